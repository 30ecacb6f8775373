//! Test support for instrument rules run natively: a fixture [`Host`] that
//! answers services from data and computes statistics from given pixels, plus
//! builders for contexts and synthetic headers.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::host::{Host, Rows};
use crate::types::{
    Card, Channel, Context, Hdu, HduKind, PlanePick, Program, Region, ScheduleEntry, ServiceError, Staff, Stats, TwilightTimes,
    Value,
};

/// Services answered from data; `None` fields answer "unavailable".
#[derive(Default)]
pub struct FixtureHost {
    pub telnr: Option<u8>,
    pub programs: BTreeMap<String, Program>,
    pub schedule: Option<Vec<ScheduleEntry>>,
    pub staff: Option<Vec<Staff>>,
    pub twilight: Option<TwilightTimes>,
    /// When set, the twilight service fails (HTTP error) with this text.
    pub twilight_fails: Option<String>,
    pub weather: Option<Vec<Channel>>,
    /// Pixels per HDU: (columns, rows, row-major data); data longer than
    /// columns × rows holds further planes of a cube, one after another.
    pub images: BTreeMap<u32, (u32, u32, Vec<f32>)>,
    pub koaids: BTreeMap<String, String>,
    pub logs: RefCell<Vec<String>>,
    /// Calls made, for assertions ("program-info 2019A_C272", …).
    pub calls: RefCell<Vec<String>>,
}

fn unavailable<T>(what: &str) -> Result<T, ServiceError> {
    Err(ServiceError::Unavailable(format!("{what} not in fixture")))
}

/// Mean/median/population-std/min/max and saturation count of finite values.
pub fn compute_stats(values: &[f32], saturate: Option<f64>) -> Stats {
    let mut v: Vec<f64> = values.iter().map(|x| *x as f64).filter(|x| x.is_finite()).collect();
    let n = v.len();
    let saturated = saturate.map_or(0, |s| v.iter().filter(|x| **x >= s).count() as u64);
    if n == 0 {
        return Stats {
            count: values.len() as u64,
            finite: 0,
            mean: f64::NAN,
            median: f64::NAN,
            std: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            saturated,
        };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
    v.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Stats {
        count: values.len() as u64,
        finite: n as u64,
        mean,
        median,
        std: var.sqrt(),
        min: v[0],
        max: v[n - 1],
        saturated,
    }
}

struct MemRows {
    cols: u32,
    rows: u32,
    data: Vec<f32>,
}

impl Rows for MemRows {
    fn shape(&self) -> (u32, u32) {
        (self.cols, self.rows)
    }
    fn read_rows(&self, y0: u32, n: u32) -> Result<Vec<f32>, String> {
        let a = (y0 * self.cols) as usize;
        let b = ((y0 + n).min(self.rows) * self.cols) as usize;
        self.data.get(a..b).map(<[f32]>::to_vec).ok_or_else(|| "rows out of range".into())
    }
}

impl Host for FixtureHost {
    fn log(&self, _level: u8, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }
    fn image_stats(&self, hdu: u32, region: Option<Region>, saturate: Option<f64>) -> Result<Stats, String> {
        let (cols, rows, data) = self.images.get(&hdu).ok_or_else(|| format!("no pixels for HDU {hdu}"))?;
        let r = region.unwrap_or(Region { x0: 0, y0: 0, nx: *cols, ny: *rows });
        let mut sel = Vec::new();
        for y in r.y0..(r.y0 + r.ny).min(*rows) {
            for x in r.x0..(r.x0 + r.nx).min(*cols) {
                sel.push(data[(y * cols + x) as usize]);
            }
        }
        Ok(compute_stats(&sel, saturate))
    }
    fn plane_stats(&self, hdu: u32, pick: PlanePick) -> Result<Stats, String> {
        let (cols, rows, data) = self.images.get(&hdu).ok_or_else(|| format!("no pixels for HDU {hdu}"))?;
        let n = (*cols * *rows) as usize;
        let plane = |k: u32| data.get(k as usize * n..(k as usize + 1) * n).ok_or_else(|| format!("HDU {hdu} has no plane {k}"));
        let a = plane(pick.plane)?;
        let values: Vec<f32> = match pick.minus {
            Some(m) => a.iter().zip(plane(m)?).map(|(x, y)| (*x as f64 - *y as f64) as f32).collect(),
            None => a.to_vec(),
        };
        self.calls.borrow_mut().push(format!("plane-stats {hdu} {} {:?}", pick.plane, pick.minus));
        Ok(compute_stats(&values, None))
    }
    fn open_image(&self, hdu: u32) -> Result<Box<dyn Rows>, String> {
        let (cols, rows, data) = self.images.get(&hdu).ok_or_else(|| format!("no pixels for HDU {hdu}"))?;
        Ok(Box::new(MemRows { cols: *cols, rows: *rows, data: data.clone() }))
    }
    fn program_info(&self, semid: &str) -> Result<Program, ServiceError> {
        self.calls.borrow_mut().push(format!("program-info {semid}"));
        match self.programs.get(semid) {
            Some(p) => Ok(p.clone()),
            None => Err(ServiceError::Failed(format!("no program {semid}"))),
        }
    }
    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError> {
        self.calls.borrow_mut().push(format!("schedule {hst_date} {telnr:?} {instrument}"));
        self.schedule.clone().map_or_else(|| unavailable("schedule"), Ok)
    }
    fn night_staff(&self, _hst_date: &str, _telnr: u8) -> Result<Vec<Staff>, ServiceError> {
        self.staff.clone().map_or_else(|| unavailable("night staff"), Ok)
    }
    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError> {
        self.calls.borrow_mut().push(format!("twilight {ut_date}"));
        if let Some(why) = &self.twilight_fails {
            return Err(ServiceError::Failed(why.clone()));
        }
        self.twilight.clone().map_or_else(|| unavailable("twilight"), Ok)
    }
    fn weather(&self, _telnr: u8, _from: &str, _to: &str) -> Result<Vec<Channel>, ServiceError> {
        self.weather.clone().map_or_else(|| unavailable("weather"), Ok)
    }
    fn telescope_number(&self, _instrument: &str) -> Result<u8, ServiceError> {
        self.telnr.map_or_else(|| unavailable("telescope number"), Ok)
    }
    fn koaid_for_file(&self, ofname: &str) -> Result<Option<String>, ServiceError> {
        Ok(self.koaids.get(ofname).cloned())
    }
}

/// A program record with every field answered.
pub fn program(pi: &str, inst: &str, title: &str, propint: i32) -> Program {
    Program {
        pi: Some(pi.into()),
        institution: Some(inst.into()),
        title: Some(title.into()),
        propint: Some(propint),
        failures: vec![],
    }
}

/// A job context for tests: mtime and clocks fixed.
pub fn context(instrument: &str) -> Context {
    Context {
        instrument: instrument.to_uppercase(),
        level: 0,
        filepath: format!("/sdata/{}/test.fits", instrument.to_lowercase()),
        ofname: format!("/sdata/{}/test.fits", instrument.to_lowercase()),
        file_mtime_utc: "2024-01-02T03:04:05.000000".into(),
        now_utc: "2024-01-02T03:05:00.000000".into(),
        now_local: "2024-01-01T17:05:00.000000".into(),
        reprocess: false,
        progid_override: None,
        assign_progname: None,
        dep_version: "test".into(),
        telescope: None,
        corrected_hundredths: false,
        options: vec![],
    }
}

/// A card.
pub fn card(key: &str, value: impl Into<Value>) -> Card {
    Card { key: key.into(), value: value.into(), comment: String::new() }
}

/// A primary HDU with these cards (and an image of `shape`, empty = none).
pub fn primary(cards: Vec<Card>, bitpix: i32, shape: &[u64]) -> Hdu {
    Hdu { index: 0, kind: HduKind::Primary, name: None, cards, bitpix, shape: shape.to_vec() }
}

/// An extension HDU.
pub fn extension(index: u32, kind: HduKind, name: &str, cards: Vec<Card>, bitpix: i32, shape: &[u64]) -> Hdu {
    Hdu { index, kind, name: Some(name.into()), cards, bitpix, shape: shape.to_vec() }
}

/// Final value of a keyword after a list of edits (None when never set).
pub fn edited<'a>(edits: &'a [crate::types::Edit], key: &str) -> Option<&'a Value> {
    edits.iter().rev().find_map(|e| match e {
        crate::types::Edit::Set(s) if s.key == key && s.hdu == 0 => Some(&s.value),
        _ => None,
    })
}

/// A DRP listing of the given files and their folders (every ancestor but
/// `/`), sorted as the runtime sorts (component by component).
pub fn drp_listing(files: &[&str]) -> crate::types::DrpListing {
    use std::path::PathBuf;
    let mut paths: Vec<(PathBuf, bool)> = Vec::new();
    for f in files {
        let p = PathBuf::from(f);
        for a in p.ancestors().skip(1) {
            if a.as_os_str().len() > 1 && !paths.iter().any(|(q, _)| q == a) {
                paths.push((a.to_path_buf(), true));
            }
        }
        paths.push((p, false));
    }
    paths.sort();
    crate::types::DrpListing {
        entries: paths.into_iter().map(|(p, d)| crate::types::DrpEntry { path: p.display().to_string(), is_dir: d }).collect(),
        headers: vec![],
        config_files: vec![],
    }
}
