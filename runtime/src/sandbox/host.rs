//! The host side of the WIT imports: the store data (`HostState`) with its
//! memory limiter, the frozen WASI context, the `image` resource, and the
//! `host` interface served from a per-job [`JobHost`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::instrument::koa::dep::{host as wit_host, pixels};
use super::bindings::types::{self, PlanePick, Program, Region, ScheduleEntry, ServiceError, Staff, Stats, TwilightTimes};
use crate::fits::pixels::{Pixels, Rect};

/// What the `host` imports need for one job: logging, pixels of the job's
/// file and the outside-world services.
pub trait JobHost: Send + Sync {
    fn log(&self, level: u8, message: &str);
    fn image_stats(&self, hdu: u32, region: Option<Region>, saturate: Option<f64>) -> Result<Stats, String>;
    fn open_image(&self, hdu: u32) -> Result<Box<dyn Pixels>, String>;
    /// One plane (or plane difference) of a 3-D image HDU.
    fn open_plane(&self, hdu: u32, pick: PlanePick) -> Result<Box<dyn Pixels>, String>;
    fn program_info(&self, semid: &str) -> Result<Program, ServiceError>;
    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError>;
    fn night_staff(&self, hst_date: &str, telnr: u8) -> Result<Vec<Staff>, ServiceError>;
    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError>;
    fn weather(&self, telnr: u8, from_utc: &str, to_utc: &str) -> Result<Vec<types::Channel>, ServiceError>;
    fn telescope_number(&self, instrument: &str) -> Result<u8, ServiceError>;
    fn koaid_for_file(&self, ofname: &str) -> Result<Option<String>, ServiceError>;
}

/// The WIT record of the host's statistics.
pub fn wit_stats(s: crate::fits::pixels::Stats) -> Stats {
    Stats { count: s.count, finite: s.finite, mean: s.mean, median: s.median, std: s.std, min: s.min, max: s.max, saturated: s.saturated }
}

/// Memory cap for one store; remembers that it was hit.
pub struct Limiter {
    cap: usize,
    pub hit: bool,
    /// The largest linear memory granted (bytes).
    pub peak: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.hit = true;
            return Err(wasmtime::format_err!("memory cap of {} MiB reached (asked for {} bytes)", self.cap >> 20, desired));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        16
    }
}

/// A host-owned image handed to a guest.
pub struct ImageRes(pub Box<dyn Pixels>);

/// Host time one call may use for outside-world services (network waits);
/// after that, service imports answer `failed` at once so the guest finishes
/// with warnings instead of waiting on a hung service.
pub const SERVICE_BUDGET: Duration = Duration::from_secs(60);

/// Store data of every component call.
pub struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    job: Option<Arc<dyn JobHost>>,
    /// When the call started.
    pub(crate) started: Instant,
    /// Time spent inside host imports (not counted against the guest's deadline).
    pub(crate) host_time: Duration,
    /// Of which waiting for services.
    pub(crate) service_time: Duration,
}

/// A wall clock stopped at the Unix epoch: components must take time from the context.
struct FrozenWall;
impl wasmtime_wasi::HostWallClock for FrozenWall {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

struct FrozenMono;
impl wasmtime_wasi::HostMonotonicClock for FrozenMono {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl HostState {
    pub fn new(memory_cap: usize, job: Option<Arc<dyn JobHost>>) -> HostState {
        use rand::SeedableRng;
        let wasi = WasiCtxBuilder::new()
            .wall_clock(FrozenWall)
            .monotonic_clock(FrozenMono)
            .secure_random(rand::rngs::StdRng::seed_from_u64(0))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(0))
            .insecure_random_seed(0)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { cap: memory_cap, hit: false, peak: 0 },
            job,
            started: Instant::now(),
            host_time: Duration::ZERO,
            service_time: Duration::ZERO,
        }
    }

    /// Time the guest itself has run (wall time minus host imports).
    pub(crate) fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }

    /// Time charged against the deadline: the guest's own, plus host
    /// compute time (host imports other than service waits) beyond
    /// `allowance`.
    pub(crate) fn charged_time(&self, allowance: Duration) -> Duration {
        let compute = self.host_time.saturating_sub(self.service_time);
        self.guest_time() + compute.saturating_sub(allowance)
    }

    /// Run a host import, keeping its time off the guest's deadline.
    fn hosted<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let t = Instant::now();
        let r = f(self);
        self.host_time += t.elapsed();
        r
    }

    /// Run a service import within the call's service budget.
    fn service<R>(&mut self, f: impl FnOnce(&Arc<dyn JobHost>) -> Result<R, ServiceError>) -> Result<R, ServiceError> {
        if self.service_time >= SERVICE_BUDGET {
            return Err(ServiceError::Failed(format!(
                "the call's service time budget of {} s is used up",
                SERVICE_BUDGET.as_secs()
            )));
        }
        let t = Instant::now();
        let r = match &self.job {
            Some(j) => f(j),
            None => Err(ServiceError::Unavailable("no job context for this call".into())),
        };
        let spent = t.elapsed();
        self.service_time += spent;
        self.host_time += spent;
        r
    }

    fn job(&self) -> Result<&Arc<dyn JobHost>, String> {
        self.job.as_ref().ok_or_else(|| "no job context for this call".to_string())
    }

    fn image(&mut self, r: &Resource<ImageRes>) -> Result<&mut Box<dyn Pixels>, String> {
        self.table.get_mut(r).map(|i| &mut i.0).map_err(|e| format!("bad image handle: {e}"))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn rect(r: Region) -> Rect {
    Rect { x0: r.x0 as u64, y0: r.y0 as u64, nx: r.nx as u64, ny: r.ny as u64 }
}

/// Largest pixel read a guest may ask for in one call.
const MAX_READ_PIXELS: u64 = 16 << 20;

impl pixels::HostImage for HostState {
    fn shape(&mut self, img: Resource<ImageRes>) -> (u32, u32) {
        self.image(&img).map(|i| (i.shape().0 as u32, i.shape().1 as u32)).unwrap_or((0, 0))
    }

    fn is_integer(&mut self, img: Resource<ImageRes>) -> bool {
        self.image(&img).map(|i| i.is_integer()).unwrap_or(false)
    }

    fn read_rows(&mut self, img: Resource<ImageRes>, y0: u32, n: u32) -> Result<Vec<f32>, String> {
        self.hosted(|s| {
            let i = s.image(&img)?;
            if i.shape().0 * n as u64 > MAX_READ_PIXELS {
                return Err(format!("read of {n} rows is too large"));
            }
            i.read_rows(y0 as u64, n as u64).map_err(|e| e.to_string())
        })
    }

    fn read_section(&mut self, img: Resource<ImageRes>, r: Region) -> Result<Vec<f32>, String> {
        if r.nx as u64 * r.ny as u64 > MAX_READ_PIXELS {
            return Err(format!("section {}x{} is too large", r.nx, r.ny));
        }
        self.hosted(|s| s.image(&img)?.read_section(rect(r)).map_err(|e| e.to_string()))
    }

    fn read_binned(&mut self, img: Resource<ImageRes>, r: Region, factor: u32) -> Result<Vec<f32>, String> {
        let f = factor.max(1) as u64;
        if (r.nx as u64 / f) * (r.ny as u64 / f) > MAX_READ_PIXELS {
            return Err(format!("binned section {}x{} / {f} is too large", r.nx, r.ny));
        }
        self.hosted(|s| s.image(&img)?.read_binned(rect(r), f).map_err(|e| e.to_string()))
    }

    fn sample(&mut self, img: Resource<ImageRes>, r: Option<Region>, max: u32) -> Result<Vec<pixels::SamplePoint>, String> {
        let max = max.min(1 << 20) as u64;
        let s = self.hosted(|s| s.image(&img)?.sample(r.map(rect), max).map_err(|e| e.to_string()))?;
        Ok(s.into_iter().map(|(row, value)| pixels::SamplePoint { row: row as u32, value }).collect())
    }

    fn drop(&mut self, img: Resource<ImageRes>) -> wasmtime::Result<()> {
        self.table.delete(img)?;
        Ok(())
    }
}

impl pixels::Host for HostState {}
impl types::Host for HostState {}

impl wit_host::Host for HostState {
    fn log(&mut self, level: u8, message: String) {
        if let Some(j) = &self.job {
            let message: String = message.chars().take(4096).collect();
            j.log(level, &message);
        }
    }

    fn image_stats(&mut self, hdu: u32, region: Option<Region>, saturate: Option<f64>) -> Result<Stats, String> {
        self.hosted(|s| s.job()?.image_stats(hdu, region, saturate))
    }

    fn count_at_least(&mut self, hdu: u32, region: Option<Region>, threshold: f64) -> Result<u64, String> {
        self.hosted(|s| {
            let mut img = s.job()?.open_image(hdu)?;
            img.count_at_least(region.map(rect), threshold).map_err(|e| e.to_string())
        })
    }

    fn plane_stats(&mut self, hdu: u32, pick: PlanePick) -> Result<Stats, String> {
        self.hosted(|s| {
            let mut img = s.job()?.open_plane(hdu, pick)?;
            img.stats(None, None).map(wit_stats).map_err(|e| e.to_string())
        })
    }

    fn open_image(&mut self, hdu: u32) -> Result<Resource<ImageRes>, String> {
        let img = self.hosted(|s| s.job()?.open_image(hdu))?;
        self.table.push(ImageRes(img)).map_err(|e| e.to_string())
    }

    fn program_info(&mut self, semid: String) -> Result<Program, ServiceError> {
        self.service(|j| j.program_info(&semid))
    }

    fn schedule(&mut self, hst_date: String, telnr: Option<u8>, instrument: String) -> Result<Vec<ScheduleEntry>, ServiceError> {
        self.service(|j| j.schedule(&hst_date, telnr, &instrument))
    }

    fn night_staff(&mut self, hst_date: String, telnr: u8) -> Result<Vec<Staff>, ServiceError> {
        self.service(|j| j.night_staff(&hst_date, telnr))
    }

    fn twilight(&mut self, ut_date: String) -> Result<TwilightTimes, ServiceError> {
        self.service(|j| j.twilight(&ut_date))
    }

    fn weather(&mut self, telnr: u8, from_utc: String, to_utc: String) -> Result<Vec<types::Channel>, ServiceError> {
        self.service(|j| j.weather(telnr, &from_utc, &to_utc))
    }

    fn telescope_number(&mut self, instrument: String) -> Result<u8, ServiceError> {
        self.service(|j| j.telescope_number(&instrument))
    }

    fn koaid_for_file(&mut self, ofname: String) -> Result<Option<String>, ServiceError> {
        self.service(|j| j.koaid_for_file(&ofname))
    }
}
