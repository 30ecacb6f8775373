//! Outside-world services the components ask for through host imports:
//! program information (one host call per SEMID, cached), telescope
//! schedule, night staff, twilight, weather samples and the telescope number.
//! Served by the Keck web API over HTTP (`http`), by an offline fixture file
//! (`fixture`, for tests and the demo), or not at all (`Offline`). A failure
//! is returned as a `service-error`; the components turn it into a warning.

pub mod fixture;
pub mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::sandbox::bindings::types::{Channel, Program, ScheduleEntry, ServiceError, Staff, TwilightTimes};

/// The services interface (synchronous: called from component host imports
/// on blocking threads).
pub trait Services: Send + Sync {
    fn program_info(&self, semid: &str) -> Result<Program, ServiceError>;
    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError>;
    fn night_staff(&self, hst_date: &str, telnr: u8) -> Result<Vec<Staff>, ServiceError>;
    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError>;
    fn weather(&self, telnr: u8, from_utc: &str, to_utc: &str) -> Result<Vec<Channel>, ServiceError>;
    fn telescope_number(&self, instrument: &str) -> Result<u8, ServiceError>;
    /// The PI's e-mail address of a program (host only: the ingest
    /// callback's PI notice); unavailable unless a service answers it.
    fn pi_email(&self, semid: &str) -> Result<String, ServiceError> {
        let _ = semid;
        Err(ServiceError::Unavailable("no PI e-mail service".into()))
    }
}

/// No services configured: every answer is "unavailable".
pub struct Offline;

fn off<T>() -> Result<T, ServiceError> {
    Err(ServiceError::Unavailable("no services configured".into()))
}

impl Services for Offline {
    fn program_info(&self, _: &str) -> Result<Program, ServiceError> {
        off()
    }
    fn schedule(&self, _: &str, _: Option<u8>, _: &str) -> Result<Vec<ScheduleEntry>, ServiceError> {
        off()
    }
    fn night_staff(&self, _: &str, _: u8) -> Result<Vec<Staff>, ServiceError> {
        off()
    }
    fn twilight(&self, _: &str) -> Result<TwilightTimes, ServiceError> {
        off()
    }
    fn weather(&self, _: u8, _: &str, _: &str) -> Result<Vec<Channel>, ServiceError> {
        off()
    }
    fn telescope_number(&self, _: &str) -> Result<u8, ServiceError> {
        off()
    }
}

/// A time-bounded answer cache in front of any [`Services`].
pub struct Cached<S> {
    inner: S,
    ttl: Duration,
    programs: Mutex<HashMap<String, (Instant, Result<Program, ServiceError>)>>,
    schedules: Mutex<HashMap<String, (Instant, Result<Vec<ScheduleEntry>, ServiceError>)>>,
    staff: Mutex<HashMap<String, (Instant, Result<Vec<Staff>, ServiceError>)>>,
    twilights: Mutex<HashMap<String, (Instant, Result<TwilightTimes, ServiceError>)>>,
    telnrs: Mutex<HashMap<String, (Instant, Result<u8, ServiceError>)>>,
}

fn cached<T: Clone>(
    map: &Mutex<HashMap<String, (Instant, Result<T, ServiceError>)>>,
    key: String,
    ttl: Duration,
    fetch: impl FnOnce() -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    if let Some((at, v)) = map.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        if at.elapsed() < ttl {
            return v.clone();
        }
    }
    let v = fetch();
    // failures are kept briefly so a burst of frames does not hammer a dead service
    let stamp = if v.is_ok() { Instant::now() } else { Instant::now() - ttl.saturating_sub(Duration::from_secs(30)) };
    map.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (stamp, v.clone()));
    v
}

impl<S: Services> Cached<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        Cached {
            inner,
            ttl,
            programs: Mutex::default(),
            schedules: Mutex::default(),
            staff: Mutex::default(),
            twilights: Mutex::default(),
            telnrs: Mutex::default(),
        }
    }
}

impl<S: Services> Services for Cached<S> {
    fn program_info(&self, semid: &str) -> Result<Program, ServiceError> {
        cached(&self.programs, semid.to_string(), self.ttl, || self.inner.program_info(semid))
    }
    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError> {
        cached(&self.schedules, format!("{hst_date}|{telnr:?}|{instrument}"), self.ttl, || {
            self.inner.schedule(hst_date, telnr, instrument)
        })
    }
    fn night_staff(&self, hst_date: &str, telnr: u8) -> Result<Vec<Staff>, ServiceError> {
        cached(&self.staff, format!("{hst_date}|{telnr}"), self.ttl, || self.inner.night_staff(hst_date, telnr))
    }
    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError> {
        cached(&self.twilights, ut_date.to_string(), self.ttl, || self.inner.twilight(ut_date))
    }
    fn weather(&self, telnr: u8, from_utc: &str, to_utc: &str) -> Result<Vec<Channel>, ServiceError> {
        // every frame has its own window: never cached
        self.inner.weather(telnr, from_utc, to_utc)
    }
    fn telescope_number(&self, instrument: &str) -> Result<u8, ServiceError> {
        cached(&self.telnrs, instrument.to_string(), self.ttl, || self.inner.telescope_number(instrument))
    }
    fn pi_email(&self, semid: &str) -> Result<String, ServiceError> {
        self.inner.pi_email(semid)
    }
}

/// The services a configuration asks for: the fixture when one is named,
/// else the Keck API when its URL is set, else none.
pub fn from_config(cfg: &Config, rt: tokio::runtime::Handle) -> anyhow::Result<Arc<dyn Services>> {
    let ttl = Duration::from_secs(cfg.services.cache_s);
    if let Some(path) = &cfg.services.fixture {
        let f = fixture::Fixture::load(path)?;
        return Ok(Arc::new(f));
    }
    if cfg.services.api_url.is_some() || cfg.services.weather_url.is_some() {
        let h = http::KeckApi::new(
            cfg.services.api_url.clone(),
            cfg.services.weather_url.clone(),
            Duration::from_secs_f64(cfg.services.timeout_s),
            rt,
        )?;
        return Ok(Arc::new(Cached::new(h, ttl)));
    }
    Ok(Arc::new(Offline))
}
