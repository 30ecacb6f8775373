//! Offline services from a JSON file (tests, the demo, re-running the gold
//! conformance case). A section that is absent answers "unavailable"; a key
//! missing from a present section answers "failed".
//!
//! ```json
//! { "telescopes": {"NIRES": 2},
//!   "programs": {"2019A_C272": {"pi": "de Kleer", "institution": "CIT",
//!                 "title": "…", "propint": 18, "failures": []}},
//!   "schedule": {"2019-06-14": [{"date": "2019-06-14", "telnr": 2, "instrument": "NIRES",
//!                 "proj_code": "C272", "start_time": "18:00", "end_time": "06:00", "obs_type": "Classical"}]},
//!   "night_staff": {"2019-06-14": [{"kind": "oa", "alias": "jpelletier"}]},
//!   "twilight": {"2019-06-15": {"sunrise": "15:50:00", "sunset": "05:10:00"}},
//!   "weather": null }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Services;
use crate::sandbox::bindings::types::{Channel, Program, ScheduleEntry, ServiceError, Staff, TwilightTimes};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fixture {
    pub telescopes: Option<BTreeMap<String, u8>>,
    pub programs: Option<BTreeMap<String, Program>>,
    /// HST date → entries (filtered by instrument and telescope on lookup).
    pub schedule: Option<BTreeMap<String, Vec<ScheduleEntry>>>,
    /// HST date → staff.
    pub night_staff: Option<BTreeMap<String, Vec<Staff>>>,
    /// UT date → times.
    pub twilight: Option<BTreeMap<String, TwilightTimes>>,
    /// Channels answered for any window (samples as given).
    pub weather: Option<Vec<Channel>>,
    /// SEMID → the PI's e-mail address.
    #[serde(default)]
    pub pi_emails: Option<BTreeMap<String, String>>,
}

impl Fixture {
    pub fn load(path: &Path) -> anyhow::Result<Fixture> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("services fixture {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("services fixture {}: {e}", path.display()))
    }
}

fn section<'a, T>(s: &'a Option<T>, what: &str) -> Result<&'a T, ServiceError> {
    s.as_ref().ok_or_else(|| ServiceError::Unavailable(format!("{what}: not in the services fixture")))
}

fn missing<T>(what: &str, key: &str) -> Result<T, ServiceError> {
    Err(ServiceError::Failed(format!("{what}: no fixture entry for {key}")))
}

impl Services for Fixture {
    fn pi_email(&self, semid: &str) -> Result<String, ServiceError> {
        match section(&self.pi_emails, "pi_emails")?.get(semid) {
            Some(e) => Ok(e.clone()),
            None => missing("pi_emails", semid),
        }
    }
    fn program_info(&self, semid: &str) -> Result<Program, ServiceError> {
        match section(&self.programs, "programs")?.get(semid) {
            Some(p) => Ok(p.clone()),
            None => missing("programs", semid),
        }
    }
    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError> {
        let all = section(&self.schedule, "schedule")?;
        Ok(all
            .get(hst_date)
            .map(|v| {
                v.iter()
                    .filter(|e| e.instrument.eq_ignore_ascii_case(instrument) && telnr.is_none_or(|t| t == e.telnr))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
    fn night_staff(&self, hst_date: &str, _telnr: u8) -> Result<Vec<Staff>, ServiceError> {
        match section(&self.night_staff, "night_staff")?.get(hst_date) {
            Some(s) => Ok(s.clone()),
            None => missing("night_staff", hst_date),
        }
    }
    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError> {
        match section(&self.twilight, "twilight")?.get(ut_date) {
            Some(t) => Ok(t.clone()),
            None => missing("twilight", ut_date),
        }
    }
    fn weather(&self, _telnr: u8, _from: &str, _to: &str) -> Result<Vec<Channel>, ServiceError> {
        Ok(section(&self.weather, "weather")?.clone())
    }
    fn telescope_number(&self, instrument: &str) -> Result<u8, ServiceError> {
        match section(&self.telescopes, "telescopes")?.get(&instrument.to_uppercase()) {
            Some(t) => Ok(*t),
            None => missing("telescopes", instrument),
        }
    }
}
