//! HTTP client for the Keck web API shapes of spec pipeline.md §24 and the
//! EPICS archiver (weather). Every failure (network, HTTP status, unexpected
//! JSON) becomes `service-error::failed` with the URL; nothing panics.
//! Calls block the calling (non-async) thread on the runtime handle.

use std::time::Duration;

use serde_json::Value as Json;

use super::Services;
use crate::sandbox::bindings::types::{Channel, Program, Sample, ScheduleEntry, ServiceError, Staff, TwilightTimes};

/// Weather channel keyword → EPICS PV (`{n}` = telescope number).
pub const WEATHER_PVS: [(&str, &str); 9] = [
    ("WXDWPT", "k0:met:dewpointRaw"),
    ("WXOUTHUM", "k0:met:humidityRaw"),
    ("WXOUTTMP", "k0:met:tempRaw"),
    ("WXDOMTMP", "k{n}:met:tempRaw"),
    ("WXDOMHUM", "k{n}:met:humidityRaw"),
    ("WXPRESS", "k0:met:pressureRaw"),
    ("WXWNDSP", "k{n}:met:windSpeedRaw"),
    ("WXWNDIR", "k{n}:met:windAzRaw"),
    ("GUIDFWHM", "k{n}:dcs:pnt:cam0:fwhm"),
];

pub struct KeckApi {
    base: Option<String>,
    weather_url: Option<String>,
    client: reqwest::Client,
    rt: tokio::runtime::Handle,
}

impl KeckApi {
    pub fn new(base: Option<String>, weather_url: Option<String>, timeout: Duration, rt: tokio::runtime::Handle) -> anyhow::Result<KeckApi> {
        let client = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        let base = base.map(|b| if b.ends_with('/') { b } else { format!("{b}/") });
        Ok(KeckApi { base, weather_url, client, rt })
    }

    async fn fetch(&self, url: &str, query: &[(&str, &str)]) -> Result<Json, ServiceError> {
        let resp = self.client.get(url).query(query).send().await.map_err(|e| ServiceError::Failed(format!("{url}: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ServiceError::Failed(format!("{url}: HTTP {status}")));
        }
        resp.json::<Json>().await.map_err(|e| ServiceError::Failed(format!("{url}: bad JSON: {e}")))
    }

    fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<Json, ServiceError> {
        self.rt.block_on(self.fetch(url, query))
    }

    fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Json, ServiceError> {
        let Some(base) = &self.base else {
            return Err(ServiceError::Unavailable("Keck API URL not configured".into()));
        };
        self.get(&format!("{base}{path}"), query)
    }

    /// `proposals/<call>?ktn=<semid>` → `data.<field>` when `success`.
    async fn proposal(&self, base: &str, call: &str, semid: &str, field: &str) -> Result<Json, String> {
        let url = format!("proposals/{call}?ktn={semid}");
        let j = self.fetch(&format!("{base}proposals/{call}"), &[("ktn", semid)]).await.map_err(|e| format!("{url}: {}", text(&e)))?;
        let ok = j.get("success").map(|s| s.as_bool() == Some(true) || s.as_i64() == Some(1)).unwrap_or(false);
        match j.get("data").and_then(|d| d.get(field)) {
            Some(v) if ok && !v.is_null() => Ok(v.clone()),
            _ => Err(format!("{url}: no {field} in the answer")),
        }
    }
}

/// Text of a service error.
pub fn text(e: &ServiceError) -> String {
    match e {
        ServiceError::Unavailable(s) | ServiceError::Failed(s) => s.clone(),
    }
}

fn as_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn list(j: Json) -> Vec<Json> {
    match j {
        Json::Array(a) => a,
        Json::Null => vec![],
        obj => vec![obj],
    }
}

impl Services for KeckApi {
    fn pi_email(&self, semid: &str) -> Result<String, ServiceError> {
        let Some(base) = &self.base else {
            return Err(ServiceError::Unavailable("Keck API URL not configured".into()));
        };
        match self.rt.block_on(self.proposal(base, "getPIEmail", semid, "Email")) {
            Ok(v) => Ok(as_text(&v)),
            Err(e) => Err(ServiceError::Failed(e)),
        }
    }
    fn program_info(&self, semid: &str) -> Result<Program, ServiceError> {
        let Some(base) = &self.base else {
            return Err(ServiceError::Unavailable("Keck API URL not configured".into()));
        };
        // the four lookups run concurrently: one timeout at most, not four
        let (pi, inst, title, pp) = self.rt.block_on(async {
            tokio::join!(
                self.proposal(base, "getPI", semid, "LastName"),
                self.proposal(base, "getAllocInst", semid, "AllocInst"),
                self.proposal(base, "getTitle", semid, "ProgramTitle"),
                self.proposal(base, "getApprovedPP", semid, "ProprietaryPeriod"),
            )
        });
        let mut failures = Vec::new();
        let mut field = |label: &str, r: Result<Json, String>| match r {
            Ok(v) => Some(v),
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                None
            }
        };
        let pi = field("pi", pi).map(|v| as_text(&v));
        let institution = field("institution", inst).map(|v| as_text(&v));
        let title = field("title", title).map(|v| as_text(&v));
        let propint = field("propint", pp).and_then(|v| match v {
            Json::Number(n) => n.as_i64().map(|i| i as i32),
            Json::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        Ok(Program { pi, institution, title, propint, failures })
    }

    fn schedule(&self, hst_date: &str, telnr: Option<u8>, instrument: &str) -> Result<Vec<ScheduleEntry>, ServiceError> {
        let t = telnr.map(|t| t.to_string());
        let mut q = vec![("date", hst_date)];
        if let Some(t) = &t {
            q.push(("telnr", t));
        }
        q.push(("instr", instrument));
        let j = self.api("schedule/getSchedule", &q)?;
        Ok(list(j)
            .into_iter()
            .map(|e| ScheduleEntry {
                date: e.get("Date").map(as_text).unwrap_or_else(|| hst_date.to_string()),
                telnr: e.get("TelNr").and_then(|v| as_text(v).parse().ok()).or(telnr).unwrap_or(0),
                instrument: e.get("Instrument").map(as_text).unwrap_or_else(|| instrument.to_string()),
                proj_code: e.get("ProjCode").map(as_text).unwrap_or_default(),
                start_time: e.get("StartTime").map(as_text).unwrap_or_default(),
                end_time: e.get("EndTime").map(as_text).unwrap_or_default(),
                obs_type: e.get("ObsType").map(as_text).unwrap_or_default(),
            })
            .collect())
    }

    fn night_staff(&self, hst_date: &str, telnr: u8) -> Result<Vec<Staff>, ServiceError> {
        let t = telnr.to_string();
        let j = self.api("employee/getNightStaff", &[("date", hst_date), ("telnr", &t)])?;
        Ok(list(j)
            .into_iter()
            .map(|e| Staff {
                kind: e.get("Type").map(as_text).unwrap_or_default(),
                alias: e.get("Alias").map(as_text).unwrap_or_default(),
            })
            .collect())
    }

    fn twilight(&self, ut_date: &str) -> Result<TwilightTimes, ServiceError> {
        let j = self.api("schedule/getTwilightData", &[("date", ut_date)])?;
        let j = list(j).into_iter().next().unwrap_or(Json::Null);
        match (j.get("sunrise"), j.get("sunset")) {
            (Some(r), Some(s)) => Ok(TwilightTimes { sunrise: as_text(r), sunset: as_text(s) }),
            _ => Err(ServiceError::Failed(format!("getTwilightData?date={ut_date}: no sunrise/sunset"))),
        }
    }

    fn weather(&self, telnr: u8, from_utc: &str, to_utc: &str) -> Result<Vec<Channel>, ServiceError> {
        let Some(template) = &self.weather_url else {
            return Err(ServiceError::Unavailable("weather archiver URL not configured".into()));
        };
        let url = template.replace("{telnr}", &telnr.to_string());
        // the nine channels are fetched concurrently
        let pvs: Vec<String> = WEATHER_PVS.iter().map(|(_, pv)| pv.replace("{n}", &telnr.to_string())).collect();
        let answers = self.rt.block_on(futures::future::join_all(
            pvs.iter().map(|pv| {
                let url = &url;
                async move { self.fetch(url, &[("pv", pv), ("from", from_utc), ("to", to_utc)]).await }
            }),
        ));
        let mut out = Vec::new();
        for ((keyword, _), answer) in WEATHER_PVS.iter().zip(answers) {
            let mut ch = Channel { keyword: keyword.to_string(), samples: vec![], error: None };
            match answer {
                Ok(j) => {
                    for block in list(j) {
                        for s in block.get("data").and_then(Json::as_array).into_iter().flatten() {
                            if let (Some(secs), Some(val)) = (s.get("secs").and_then(Json::as_i64), s.get("val").and_then(Json::as_f64)) {
                                let nanos = s.get("nanos").and_then(Json::as_u64).unwrap_or(0) as u32;
                                ch.samples.push(Sample { secs, nanos, val });
                            }
                        }
                    }
                }
                Err(e) => ch.error = Some(text(&e)),
            }
            out.push(ch);
        }
        Ok(out)
    }

    fn telescope_number(&self, instrument: &str) -> Result<u8, ServiceError> {
        let j = self.api("schedule/getTelnr", &[("instr", instrument)])?;
        let first = list(j).into_iter().next().unwrap_or(Json::Null);
        first
            .get("TelNr")
            .and_then(|v| as_text(v).parse::<u8>().ok())
            .ok_or_else(|| ServiceError::Failed(format!("getTelnr?instr={instrument}: no TelNr in the answer")))
    }
}
