//! The host imports of one job: its log, the pixels of its file (through
//! cfitsio) and the shared services; DEIMOS's FCS lookup asks the job store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::db::Db;
use crate::fits::pixels::{Direct, Image, Loaded, Pixels, Rect};
use crate::sandbox::JobHost;
use crate::sandbox::bindings::types::{Channel, PlanePick, Program, Region, ScheduleEntry, ServiceError, Staff, Stats, TwilightTimes};
use crate::services::Services;

/// Log lines of a job (written to `<KOAID>.log` at the end).
#[derive(Clone, Default)]
pub struct JobLog(Arc<Mutex<Vec<String>>>);

impl JobLog {
    pub fn line(&self, level: &str, message: &str) {
        let stamp = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f");
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{stamp} {level}: {message}"));
        match level {
            "ERROR" => tracing::error!("{message}"),
            "WARNING" => tracing::warn!("{message}"),
            _ => tracing::debug!("{message}"),
        }
    }
    pub fn info(&self, m: &str) {
        self.line("INFO", m)
    }
    pub fn warn(&self, m: &str) {
        self.line("WARNING", m)
    }
    pub fn error(&self, m: &str) {
        self.line("ERROR", m)
    }
    pub fn text(&self) -> String {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
        s.push('\n');
        s
    }
}

/// Per-HDU pixel facts the host needs (which HDUs have images, integer data).
#[derive(Clone, Debug)]
pub struct PixelHdu {
    pub has_image: bool,
    pub integer: bool,
    /// Set for uncompressed images of an unrepaired input: read directly.
    pub direct: Option<crate::fits::pixels::Layout>,
}

pub struct PipelineHost {
    /// A cfitsio-readable copy of the input (the input itself unless repaired).
    pub pixels_path: PathBuf,
    pub hdus: Vec<PixelHdu>,
    pub services: Arc<dyn Services>,
    pub log: JobLog,
    pub db: Option<(Db, tokio::runtime::Handle)>,
    /// Stats already computed, by (hdu, region).
    cache: Mutex<Vec<((u32, Option<(u32, u32, u32, u32)>), Stats)>>,
    /// Images small enough to keep decoded in memory, shared by the
    /// statistics and the previews (one cfitsio read per HDU).
    loaded: Mutex<BTreeMap<u32, Loaded>>,
    /// The last plane (or plane difference) decoded per HDU, by (plane, minus).
    planes: Mutex<BTreeMap<u32, ((u32, Option<u32>), Loaded)>>,
}

/// Images up to this many pixels are decoded once and kept (32 MiB of f32).
const KEEP_PIXELS: u64 = 8 << 20;

/// Largest plane decoded for a plane pick (128 MiB of f32, a 5.8k² plane;
/// a difference holds two f64 planes while it is computed). A larger one
/// is refused: the host's memory is outside the component's cap.
const PLANE_MAX_PIXELS: u64 = 32 << 20;

impl PipelineHost {
    pub fn new(
        pixels_path: PathBuf,
        hdus: Vec<PixelHdu>,
        services: Arc<dyn Services>,
        log: JobLog,
        db: Option<(Db, tokio::runtime::Handle)>,
    ) -> Self {
        PipelineHost { pixels_path, hdus, services, log, db, cache: Mutex::new(Vec::new()), loaded: Mutex::new(BTreeMap::new()), planes: Mutex::new(BTreeMap::new()) }
    }

    /// The pixels of an HDU: from memory when small, else streamed from disk.
    fn image(&self, hdu: u32) -> Result<Box<dyn Pixels>, String> {
        let h = self.hdus.get(hdu as usize).ok_or_else(|| format!("no HDU {hdu}"))?;
        if !h.has_image {
            return Err(format!("HDU {hdu} has no image data"));
        }
        // held while decoding, so concurrent steps (statistics, previews)
        // never decode the same HDU twice
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = loaded.get(&hdu) {
            return Ok(Box::new(l.clone()));
        }
        if let Some(layout) = h.direct {
            let img = Direct::open(&self.pixels_path, layout, h.integer).map_err(|e| e.to_string())?;
            if layout.cols * layout.rows > KEEP_PIXELS {
                return Ok(Box::new(img));
            }
            let l = img.load().map_err(|e| e.to_string())?;
            loaded.insert(hdu, l.clone());
            return Ok(Box::new(l));
        }
        let img = Image::open(&self.pixels_path, hdu as usize, h.integer).map_err(|e| e.to_string())?;
        let (c, r) = img.shape();
        if c * r > KEEP_PIXELS {
            return Ok(Box::new(img));
        }
        let l = img.load().map_err(|e| e.to_string())?;
        loaded.insert(hdu, l.clone());
        Ok(Box::new(l))
    }

    /// One plane of a cube, or the difference of two, decoded into memory
    /// once (the statistics and every preview strip share it).
    fn plane(&self, hdu: u32, pick: PlanePick) -> Result<Loaded, String> {
        let h = self.hdus.get(hdu as usize).ok_or_else(|| format!("no HDU {hdu}"))?;
        if !h.has_image {
            return Err(format!("HDU {hdu} has no image data"));
        }
        let key = (pick.plane, pick.minus);
        let mut planes = self.planes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, l)) = planes.get(&hdu) {
            if *k == key {
                return Ok(l.clone());
            }
        }
        let img = Image::open(&self.pixels_path, hdu as usize, h.integer).map_err(|e| e.to_string())?;
        let (c, r) = img.shape();
        if c.saturating_mul(r) > PLANE_MAX_PIXELS {
            return Err(format!("HDU {hdu}: a {c}x{r} plane is larger than the {PLANE_MAX_PIXELS} pixels a plane pick may decode"));
        }
        let l = match pick.minus {
            Some(m) => img.plane_difference(pick.plane as u64, m as u64),
            None => img.load_plane(pick.plane as u64),
        }
        .map_err(|e| e.to_string())?;
        // one plane kept per HDU: a component asking for many planes holds one
        planes.insert(hdu, (key, l.clone()));
        Ok(l)
    }
}

impl JobHost for PipelineHost {
    fn log(&self, level: u8, message: &str) {
        match level {
            0 | 1 => self.log.info(message),
            2 => self.log.warn(message),
            _ => self.log.error(message),
        }
    }

    fn image_stats(&self, hdu: u32, region: Option<Region>, saturate: Option<f64>) -> Result<Stats, String> {
        let key = (hdu, region.map(|r| (r.x0, r.y0, r.nx, r.ny)));
        let rect = region.map(|r| Rect { x0: r.x0 as u64, y0: r.y0 as u64, nx: r.nx as u64, ny: r.ny as u64 });
        let known = self.cache.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| *k == key).map(|(_, s)| *s);
        let mut img = self.image(hdu)?;
        if let Some(mut s) = known {
            // the moments are known: only the saturation count is new
            s.saturated = match saturate {
                Some(t) => img.count_at_least(rect, t).map_err(|e| e.to_string())?,
                None => 0,
            };
            return Ok(s);
        }
        let out = crate::sandbox::wit_stats(img.stats(rect, saturate).map_err(|e| e.to_string())?);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).push((key, out));
        Ok(out)
    }

    fn open_image(&self, hdu: u32) -> Result<Box<dyn Pixels>, String> {
        self.image(hdu)
    }

    fn open_plane(&self, hdu: u32, pick: PlanePick) -> Result<Box<dyn Pixels>, String> {
        self.plane(hdu, pick).map(|l| Box::new(l) as Box<dyn Pixels>)
    }

    fn program_info(&self, semid: &str) -> Result<Program, ServiceError> {
        self.log.info(&format!("program info for {semid}"));
        self.services.program_info(semid)
    }
    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError> {
        self.log.info(&format!("schedule {hst_date} telnr {telnr:?} {instrument}"));
        self.services.schedule(hst_date, telnr, instrument)
    }
    fn night_staff(&self, hst_date: &str, telnr: u8) -> Result<Vec<Staff>, ServiceError> {
        self.services.night_staff(hst_date, telnr)
    }
    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError> {
        self.services.twilight(ut_date)
    }
    fn weather(&self, telnr: u8, from_utc: &str, to_utc: &str) -> Result<Vec<Channel>, ServiceError> {
        self.services.weather(telnr, from_utc, to_utc)
    }
    fn telescope_number(&self, instrument: &str) -> Result<u8, ServiceError> {
        self.services.telescope_number(instrument)
    }
    fn koaid_for_file(&self, ofname: &str) -> Result<Option<String>, ServiceError> {
        let Some((db, rt)) = &self.db else {
            return Err(ServiceError::Unavailable("no job store".into()));
        };
        let row = rt
            .block_on(db.latest_any_by_ofname(ofname))
            .map_err(|e| ServiceError::Failed(e.to_string()))?;
        Ok(row.filter(|r| r.level == 0).and_then(|r| r.koaid))
    }
}
