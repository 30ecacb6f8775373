//! The services an instrument may ask the runtime for, as a trait so the
//! rules can be unit-tested natively with a fixture; [`WasmHost`] forwards to
//! the component's host imports.

use crate::types::{Channel, PlanePick, Program, Region, ScheduleEntry, ServiceError, Staff, Stats, TwilightTimes};

/// Streaming access to one image HDU.
pub trait Rows {
    /// (columns, rows)
    fn shape(&self) -> (u32, u32);
    /// Rows [y0, y0+n) row-major.
    fn read_rows(&self, y0: u32, n: u32) -> Result<Vec<f32>, String>;
}

/// Host services (see `interface host` in wit/koa-dep.wit).
pub trait Host {
    fn log(&self, level: u8, message: &str);
    fn image_stats(&self, hdu: u32, region: Option<Region>, saturate: Option<f64>) -> Result<Stats, String>;
    fn open_image(&self, hdu: u32) -> Result<Box<dyn Rows>, String>;
    /// Statistics of one plane (or plane difference) of a 3-D image HDU.
    fn plane_stats(&self, hdu: u32, pick: PlanePick) -> Result<Stats, String>;
    /// Pixels ≥ `threshold` (NPIXSAT, NLINEAR) without the other statistics.
    fn count_at_least(&self, hdu: u32, region: Option<Region>, threshold: f64) -> Result<u64, String> {
        self.image_stats(hdu, region, Some(threshold)).map(|s| s.saturated)
    }
    fn program_info(&self, semid: &str) -> Result<Program, ServiceError>;
    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError>;
    fn night_staff(&self, hst_date: &str, telnr: u8) -> Result<Vec<Staff>, ServiceError>;
    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError>;
    fn weather(&self, telnr: u8, from_utc: &str, to_utc: &str) -> Result<Vec<Channel>, ServiceError>;
    fn telescope_number(&self, instrument: &str) -> Result<u8, ServiceError>;
    fn koaid_for_file(&self, ofname: &str) -> Result<Option<String>, ServiceError>;
}

/// Text of a service error for diagnostics.
pub fn service_error_text(e: &ServiceError) -> String {
    match e {
        ServiceError::Unavailable(s) => format!("unavailable: {s}"),
        ServiceError::Failed(s) => format!("failed: {s}"),
    }
}

/// The real host: the component's imports.
pub struct WasmHost;

struct WasmRows(crate::bindings::koa::dep::pixels::Image);

impl Rows for WasmRows {
    fn shape(&self) -> (u32, u32) {
        self.0.shape()
    }
    fn read_rows(&self, y0: u32, n: u32) -> Result<Vec<f32>, String> {
        self.0.read_rows(y0, n)
    }
}

impl Host for WasmHost {
    fn log(&self, level: u8, message: &str) {
        crate::bindings::koa::dep::host::log(level, message)
    }
    fn image_stats(&self, hdu: u32, region: Option<Region>, saturate: Option<f64>) -> Result<Stats, String> {
        crate::bindings::koa::dep::host::image_stats(hdu, region, saturate)
    }
    fn count_at_least(&self, hdu: u32, region: Option<Region>, threshold: f64) -> Result<u64, String> {
        crate::bindings::koa::dep::host::count_at_least(hdu, region, threshold)
    }
    fn plane_stats(&self, hdu: u32, pick: PlanePick) -> Result<Stats, String> {
        crate::bindings::koa::dep::host::plane_stats(hdu, pick)
    }
    fn open_image(&self, hdu: u32) -> Result<Box<dyn Rows>, String> {
        crate::bindings::koa::dep::host::open_image(hdu).map(|i| Box::new(WasmRows(i)) as Box<dyn Rows>)
    }
    fn program_info(&self, semid: &str) -> Result<Program, ServiceError> {
        crate::bindings::koa::dep::host::program_info(semid)
    }
    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError> {
        crate::bindings::koa::dep::host::schedule(hst_date, telnr, instrument)
    }
    fn night_staff(&self, hst_date: &str, telnr: u8) -> Result<Vec<Staff>, ServiceError> {
        crate::bindings::koa::dep::host::night_staff(hst_date, telnr)
    }
    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError> {
        crate::bindings::koa::dep::host::twilight(ut_date)
    }
    fn weather(&self, telnr: u8, from_utc: &str, to_utc: &str) -> Result<Vec<Channel>, ServiceError> {
        crate::bindings::koa::dep::host::weather(telnr, from_utc, to_utc)
    }
    fn telescope_number(&self, instrument: &str) -> Result<u8, ServiceError> {
        crate::bindings::koa::dep::host::telescope_number(instrument)
    }
    fn koaid_for_file(&self, ofname: &str) -> Result<Option<String>, ServiceError> {
        crate::bindings::koa::dep::host::koaid_for_file(ofname)
    }
}
