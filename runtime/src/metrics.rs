//! In-process metrics of the jobs this process ran — step and job latency
//! histograms per instrument, finished jobs by status and code, component
//! failures — and their Prometheus text exposition (with the database
//! counts and the daemon's counters added by the status server).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::pipeline::JobReport;

/// Upper bounds (seconds) of the latency histograms.
pub const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Cumulative counts per bucket of [`BUCKETS`].
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        for (b, le) in self.buckets.iter_mut().zip(BUCKETS) {
            if v <= le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Debug, Default)]
struct State {
    /// (instrument, step) → seconds.
    steps: BTreeMap<(String, String), Histogram>,
    /// instrument → whole-job seconds.
    jobs: BTreeMap<String, Histogram>,
    /// (instrument, status, code) → finished jobs.
    finished: BTreeMap<(String, String, String), u64>,
    /// (instrument, code) → component failures (COMPONENT_* codes).
    component_failures: BTreeMap<(String, String), u64>,
}

/// Metrics of one process (shared by every job).
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    /// Record a finished job.
    pub fn record(&self, r: &JobReport) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let instr = r.instrument.to_uppercase();
        let mut total = 0.0;
        for (step, secs) in &r.timings {
            s.steps.entry((instr.clone(), step.clone())).or_default().observe(*secs);
            total += secs;
        }
        s.jobs.entry(instr.clone()).or_default().observe(total);
        *s.finished.entry((instr.clone(), r.status.as_str().to_string(), r.status_code.clone().unwrap_or_default())).or_default() += 1;
        for d in &r.diagnostics {
            if d.code.starts_with("COMPONENT_") {
                *s.component_failures.entry((instr.clone(), d.code.clone())).or_default() += 1;
            }
        }
    }

    /// Prometheus text format of this process's metrics.
    pub fn render(&self, out: &mut String) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        family(out, "koa_dep_jobs_finished_total", "counter", "Jobs this process finished, by instrument, status and code.");
        for ((i, st, c), n) in &s.finished {
            sample(out, "koa_dep_jobs_finished_total", &[("instrument", i), ("status", st), ("code", c)], *n as f64);
        }
        family(out, "koa_dep_component_failures_total", "counter", "Component traps, timeouts and memory-cap hits, by instrument and code.");
        for ((i, c), n) in &s.component_failures {
            sample(out, "koa_dep_component_failures_total", &[("instrument", i), ("code", c)], *n as f64);
        }
        family(out, "koa_dep_job_seconds", "histogram", "Wall time of whole jobs, by instrument.");
        for (i, h) in &s.jobs {
            histogram(out, "koa_dep_job_seconds", &[("instrument", i)], h);
        }
        family(out, "koa_dep_step_seconds", "histogram", "Wall time of pipeline steps, by instrument and step.");
        for ((i, st), h) in &s.steps {
            histogram(out, "koa_dep_step_seconds", &[("instrument", i), ("step", st)], h);
        }
    }
}

/// `# HELP` and `# TYPE` lines.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line with escaped label values.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    let _ = write!(out, "{name}");
    if !labels.is_empty() {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let _ = write!(out, "{{{}}}", l.join(","));
    }
    let _ = writeln!(out, " {}", fmt_value(v));
}

fn histogram(out: &mut String, name: &str, labels: &[(&str, &str)], h: &Histogram) {
    for (le, n) in BUCKETS.iter().zip(h.buckets) {
        let le = le.to_string();
        let mut l = labels.to_vec();
        l.push(("le", &le));
        sample(out, &format!("{name}_bucket"), &l, n as f64);
    }
    let mut l = labels.to_vec();
    l.push(("le", "+Inf"));
    sample(out, &format!("{name}_bucket"), &l, h.count as f64);
    sample(out, &format!("{name}_sum"), labels, h.sum);
    sample(out, &format!("{name}_count"), labels, h.count as f64);
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Status;

    fn report(status: Status, code: Option<&str>, timings: &[(&str, f64)], diag: &[&str]) -> JobReport {
        JobReport {
            id: 1,
            instrument: "nires".into(),
            ofname: "/x.fits".into(),
            koaid: None,
            status,
            status_code: code.map(Into::into),
            message: None,
            diagnostics: diag
                .iter()
                .map(|c| crate::pipeline::Diag { severity: crate::pipeline::Severity::Error, code: c.to_string(), step: "dqa".into(), message: String::new() })
                .collect(),
            products: vec![],
            timings: timings.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            steps: vec![],
            changes: vec![],
            unrecorded: None,
        }
    }

    #[test]
    fn histograms_counters_and_exposition() {
        let m = Metrics::default();
        m.record(&report(Status::Complete, None, &[("load", 0.004), ("dqa", 0.2)], &[]));
        m.record(&report(Status::Error, Some("COMPONENT_TIMEOUT"), &[("load", 0.03)], &["COMPONENT_TIMEOUT"]));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("# TYPE koa_dep_step_seconds histogram"));
        assert!(out.contains(r#"koa_dep_jobs_finished_total{instrument="NIRES",status="COMPLETE",code=""} 1"#), "{out}");
        assert!(out.contains(r#"koa_dep_jobs_finished_total{instrument="NIRES",status="ERROR",code="COMPONENT_TIMEOUT"} 1"#));
        assert!(out.contains(r#"koa_dep_component_failures_total{instrument="NIRES",code="COMPONENT_TIMEOUT"} 1"#));
        // load: 0.004 and 0.03 → le 0.005 has 1, le 0.05 has 2, +Inf 2
        assert!(out.contains(r#"koa_dep_step_seconds_bucket{instrument="NIRES",step="load",le="0.005"} 1"#), "{out}");
        assert!(out.contains(r#"koa_dep_step_seconds_bucket{instrument="NIRES",step="load",le="0.025"} 1"#));
        assert!(out.contains(r#"koa_dep_step_seconds_bucket{instrument="NIRES",step="load",le="0.05"} 2"#));
        assert!(out.contains(r#"koa_dep_step_seconds_bucket{instrument="NIRES",step="load",le="+Inf"} 2"#));
        assert!(out.contains(r#"koa_dep_step_seconds_count{instrument="NIRES",step="load"} 2"#));
        assert!(out.contains(r#"koa_dep_job_seconds_count{instrument="NIRES"} 2"#));
        let mut esc = String::new();
        sample(&mut esc, "m", &[("a", "x\"y\\z")], 1.5);
        assert_eq!(esc, "m{a=\"x\\\"y\\\\z\"} 1.5\n");
    }
}
