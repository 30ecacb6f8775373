//! The daemon's status server (axum): `/` a page of instruments, recent
//! files with their preview thumbnails and outstanding errors (with an
//! acknowledge button for a signed-in operator; read-only otherwise),
//! `/preview/{id}` the thumbnail of a row, `POST /login` and `/logout` (the
//! configured token, kept in an HttpOnly SameSite=Strict cookie so it never
//! stays in a URL), `POST /ack` (token-protected), `/metrics` in Prometheus
//! text format, `/healthz`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::metrics::{family, sample};
use crate::pipeline::Archiver;

/// One service as the daemon sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServiceView {
    pub name: String,
    pub instrument: String,
    /// Seconds since the last heartbeat broadcast (None: no heartbeat keyword, or none yet).
    pub heartbeat_age_s: Option<f64>,
    /// Seconds since the last accepted file (None: none since start).
    pub last_file_age_s: Option<f64>,
    /// Heartbeat within its allowance.
    pub alive: Option<bool>,
    /// Scheduled, alive and no file for longer than the service's `silent_minutes`.
    pub silent: bool,
    /// The keyword source: `UP`, `DOWN` or `ERROR` (None: nothing heard yet).
    pub source_state: Option<&'static str>,
    /// The source's last problem (code, one line).
    pub source_problem: Option<(&'static str, String)>,
    /// The source's problems by code since start.
    pub source_problems: Vec<(&'static str, u64)>,
}

/// What the daemon shows on the page and in `/metrics`.
pub trait DaemonView: Send + Sync {
    fn name(&self) -> String;
    fn services(&self) -> Vec<ServiceView>;
    fn counters(&self) -> Vec<(&'static str, u64)>;
    /// Estimated memory of the running jobs and the budget (bytes).
    fn memory(&self) -> (u64, u64);
    /// What is holding the daemon back now.
    fn faults(&self) -> Faults;
}

/// The daemon's own faults, for `/healthz` and `/metrics`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Faults {
    /// Why no job starts (the archive disk is short of space).
    pub disk_short: Option<String>,
    /// Triggers in the journal not yet in the database.
    pub journal_pending: usize,
    /// Job outcomes in the journal not yet recorded.
    pub journal_outcomes: usize,
    /// Whether every journal line is on disk.
    pub journal_durable: bool,
    /// Whether the queue runs (the database answered since start).
    pub queue_running: bool,
}

pub struct StatusState {
    pub archiver: Arc<Archiver>,
    pub daemon: Option<Arc<dyn DaemonView>>,
}

impl StatusState {
    fn token_ok(&self, given: Option<&str>) -> bool {
        match (self.archiver.cfg.daemon.http_token.as_deref(), given) {
            (Some(want), Some(got)) if !want.is_empty() => constant_time_eq(want.as_bytes(), got.as_bytes()),
            _ => false,
        }
    }
}

/// The operator cookie.
const COOKIE: &str = "koa_dep_token";

/// The token of the request's operator cookie.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| urldecode(v))
}

/// Back to the page with the operator cookie set (or cleared).
fn with_cookie(token: Option<&str>) -> Response {
    let cookie = match token {
        Some(t) => format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", urlencode(t)),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn router(state: Arc<StatusState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/preview/{id}", get(preview))
        .route("/ack", post(ack))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/ingest_api", get(crate::ingest::http::ingest_api))
        .with_state(state)
}

/// Bind `listen` and serve until `stop` turns true; returns the bound address.
pub async fn serve(listen: &str, state: Arc<StatusState>, mut stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| anyhow::anyhow!("status page on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::warn!("status page: {e}");
        }
    });
    Ok(addr)
}

#[derive(serde::Deserialize, Default)]
struct PageQuery {
    token: Option<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn age(s: Option<f64>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7200.0 => format!("{:.0} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

async fn page(State(st): State<Arc<StatusState>>, Query(q): Query<PageQuery>, headers: HeaderMap) -> Response {
    // `/?token=` (bookmarks, scripts): exchanged for the cookie, out of the URL
    if let Some(t) = q.token.as_deref().filter(|t| st.token_ok(Some(t))) {
        return with_cookie(Some(t));
    }
    let db = &st.archiver.db;
    let (counts, groups, recent) = match tokio::try_join!(db.status_counts(), db.code_groups(false, None), db.recent(50)) {
        Ok(v) => v,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, Html(format!("<h1>koa-dep</h1><p>database: {}</p>", esc(&e.to_string())))).into_response(),
    };
    let can_ack = st.token_ok(cookie_token(&headers).as_deref());
    let sign_in = match (can_ack, st.archiver.cfg.daemon.http_token.as_deref().is_some_and(|t| !t.is_empty())) {
        (true, _) => "<form method=post action=/logout class=inline><button type=submit id=logout>Sign out</button></form>",
        (false, true) => "<form method=post action=/login class=inline><input type=password name=token placeholder=\"operator token\" autocomplete=current-password>\
                          <button type=submit id=login>Sign in</button></form>",
        (false, false) => "",
    };
    let name = st.daemon.as_ref().map(|d| d.name()).unwrap_or_else(|| "koa-dep".into());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>koa-dep {n}</title>\
         <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin-bottom:1.5em}}\
         td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left}}.ERROR,.bad{{color:#b00}}.INVALID{{color:#a60}}\
         .COMPLETE,.TRANSFERRED,.ok{{color:#070}}img{{max-height:64px}}\
         form.inline{{display:inline;margin-left:1em}}</style></head><body>\
         <h1>koa-dep <span id=daemon>{n}</span></h1><p>{now} UT · {mode}{sign_in}</p>",
        n = esc(&name),
        now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S"),
        mode = if can_ack { "operator (acknowledge enabled)" } else { "read-only" }
    );
    // instruments
    let mut instruments: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>> = Default::default();
    for c in counts.iter().filter(|c| c.level == 0) {
        *instruments.entry(c.instrument.to_uppercase()).or_default().entry(c.status.clone()).or_default() += c.count;
    }
    let services = st.daemon.as_ref().map(|d| d.services()).unwrap_or_default();
    for s in &services {
        instruments.entry(s.instrument.to_uppercase()).or_default();
    }
    h.push_str("<h2>Instruments</h2><table id=instruments><tr><th>Instrument</th><th>Services</th><th>Files by status</th></tr>");
    for (instr, by) in &instruments {
        let svc: Vec<String> = services
            .iter()
            .filter(|s| s.instrument.eq_ignore_ascii_case(instr))
            .map(|s| {
                let state = match (s.alive, s.silent) {
                    (_, true) => "<span class=bad>silent</span>",
                    (Some(true), _) => "<span class=ok>alive</span>",
                    (Some(false), _) => "<span class=bad>no heartbeat</span>",
                    (None, _) => "",
                };
                let source = match (s.source_state, &s.source_problem) {
                    (Some("UP") | None, _) => String::new(),
                    (Some(st), Some((code, text))) => format!(" <span class=bad title=\"{}\">source {} {}</span>", esc(text), esc(st), esc(code)),
                    (Some(st), None) => format!(" <span class=bad>source {}</span>", esc(st)),
                };
                format!("{} {state}{source} (heartbeat {}, last file {})", esc(&s.name), age(s.heartbeat_age_s), age(s.last_file_age_s))
            })
            .collect();
        let files: Vec<String> = by.iter().map(|(k, v)| format!("<span class={k}>{k} {v}</span>")).collect();
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(instr), svc.join("<br>"), files.join(", "));
    }
    h.push_str("</table>");
    // transferred, and IPAC has not called back
    let wait = st.archiver.cfg.daemon.ipac_wait_min;
    if let Ok(waiting) = db.waiting_for_ipac(wait).await {
        if !waiting.is_empty() {
            let _ = write!(h, "<h2>Waiting for IPAC</h2><p id=ipac-waiting>{} files transferred more than {wait:.0} min ago without IPAC's answer:", waiting.len());
            for r in waiting.iter().take(20) {
                let _ = write!(h, " {}", esc(r.koaid.as_deref().unwrap_or(&r.ofname)));
            }
            h.push_str("</p>");
        }
    }
    // errors
    h.push_str("<h2>Outstanding errors and warnings</h2>");
    if groups.is_empty() {
        h.push_str("<p id=no-errors>none</p>");
    } else {
        h.push_str("<table id=errors><tr><th>Instrument</th><th>Status</th><th>Code</th><th>Files</th><th>Newest</th><th></th></tr>");
        for g in &groups {
            let code = g.status_code.clone().unwrap_or_default();
            let button = if can_ack && !code.is_empty() {
                format!(
                    "<form method=post action=/ack><input type=hidden name=code value=\"{}\">\
                     <input type=hidden name=instrument value=\"{}\"><button type=submit class=ack>Acknowledge</button></form>",
                    esc(&code),
                    esc(&g.instrument)
                )
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr class=error-row><td>{}</td><td class={}>{}</td><td class=code>{}</td><td>{}</td><td>{}</td><td>{button}</td></tr>",
                esc(&g.instrument),
                esc(&g.status),
                esc(&g.status),
                esc(&code),
                g.count,
                g.newest_id
            );
        }
        h.push_str("</table>");
    }
    // recent files
    h.push_str("<h2>Recent files</h2><table id=recent><tr><th>Id</th><th>Level</th><th>Instrument</th><th>KOAID</th><th>Status</th><th>Code</th><th>Finished</th><th>Preview</th></tr>");
    for r in &recent {
        let thumb = if r.process_dir.is_some() && r.koaid.is_some() {
            format!("<img src=/preview/{} alt=\"preview of {}\" onload=\"this.dataset.loaded='yes'\">", r.id, esc(r.koaid.as_deref().unwrap_or("")))
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<tr class=file><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class={}>{}</td><td>{}</td><td>{}</td><td>{thumb}</td></tr>",
            r.id,
            r.level,
            esc(&r.instrument),
            esc(r.koaid.as_deref().unwrap_or(&r.ofname)),
            esc(&r.status),
            esc(&r.status),
            esc(r.status_code.as_deref().unwrap_or("")),
            r.process_end_time.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
        );
    }
    // reload every minute, but not over an operator typing the token
    h.push_str(
        "</table><p><a href=/metrics>metrics</a> · <a href=/healthz>health</a></p>\
         <script>setInterval(function(){var t=document.querySelector('input[name=token]');\
         if(!t||(t.value===''&&document.activeElement!==t))location.reload();},60000);</script></body></html>",
    );
    Html(h).into_response()
}

/// The first JPEG of a row's KOAID in its product folder, if that folder is
/// inside the archive root.
fn preview_path(root: &Path, process_dir: &str, koaid: &str) -> Option<PathBuf> {
    let root = root.canonicalize().ok()?;
    let dir = Path::new(process_dir).canonicalize().ok()?;
    if !dir.starts_with(&root) {
        return None;
    }
    let exact = dir.join(format!("{koaid}.jpg"));
    if exact.is_file() && crate::paths::check_within(&root, &exact).is_ok() {
        return Some(exact);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jpg")
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(koaid))
                && crate::tables::belongs_to(koaid, p)
        })
        .filter(|p| crate::paths::check_within(&root, p).is_ok())
        .collect();
    found.sort();
    found.into_iter().next()
}

async fn preview(State(st): State<Arc<StatusState>>, UrlPath(id): UrlPath<i64>) -> Response {
    let row = match st.archiver.db.get(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let (Some(dir), Some(koaid)) = (row.process_dir, row.koaid) else { return StatusCode::NOT_FOUND.into_response() };
    match preview_path(&st.archiver.cfg.archive.root, &dir, &koaid).map(std::fs::read) {
        Some(Ok(bytes)) => ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "max-age=3600")], bytes).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct AckForm {
    token: Option<String>,
    code: Option<String>,
    instrument: Option<String>,
    id: Option<i64>,
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: Option<String>,
}

async fn login(State(st): State<Arc<StatusState>>, Form(f): Form<LoginForm>) -> Response {
    match f.token.as_deref().filter(|t| st.token_ok(Some(t))) {
        Some(t) => with_cookie(Some(t)),
        None => {
            tracing::warn!("status page: a sign-in with a wrong token");
            (StatusCode::FORBIDDEN, "wrong operator token\n").into_response()
        }
    }
}

async fn logout() -> Response {
    with_cookie(None)
}

/// Acknowledge rows; the token comes from the operator cookie (the page) or
/// a `token` form field (scripts).
async fn ack(State(st): State<Arc<StatusState>>, headers: HeaderMap, Form(f): Form<AckForm>) -> Response {
    let token = f.token.clone().or_else(|| cookie_token(&headers));
    if !st.token_ok(token.as_deref()) {
        return (StatusCode::FORBIDDEN, "acknowledging needs the operator token\n").into_response();
    }
    let db = &st.archiver.db;
    let done = match (&f.id, f.code.as_deref().filter(|c| !c.is_empty())) {
        (Some(id), _) => db.acknowledge(&[*id]).await,
        (None, Some(code)) => db.acknowledge_code(code, f.instrument.as_deref().filter(|i| !i.is_empty())).await,
        (None, None) => return (StatusCode::BAD_REQUEST, "give an id or a code\n").into_response(),
    };
    match done {
        Ok(n) => {
            tracing::info!("status page: {n} rows acknowledged ({:?} {:?} {:?})", f.id, f.code, f.instrument);
            Redirect::to("/").into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")).into_response(),
    }
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, ENCODED).to_string()
}

/// Inverse of [`urlencode`] (a `%` not followed by two hex digits stays as it is).
fn urldecode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Seconds from the end of the transfer to IPAC's answer (the ingest
/// callback), per instrument, over the rows answered in the last day.
async fn ingest_latency(out: &mut String, db: &crate::db::Db) {
    let Ok(rows) = db.ingest_latencies().await else { return };
    let mut by: std::collections::BTreeMap<String, (u64, f64, f64)> = Default::default();
    for (instrument, xfr_end, answered) in rows {
        let s = (answered - xfr_end).num_milliseconds().max(0) as f64 / 1000.0;
        let e = by.entry(instrument).or_default();
        *e = (e.0 + 1, e.1 + s, e.2.max(s));
    }
    family(out, "koa_dep_ingest_latency_seconds", "summary", "Transfer end to IPAC's ingest callback, rows answered in the last day.");
    for (instrument, (n, sum, _)) in &by {
        sample(out, "koa_dep_ingest_latency_seconds_count", &[("instrument", instrument)], *n as f64);
        sample(out, "koa_dep_ingest_latency_seconds_sum", &[("instrument", instrument)], *sum);
    }
    family(out, "koa_dep_ingest_latency_max_seconds", "gauge", "Longest transfer-to-callback time of the last day.");
    for (instrument, (_, _, max)) in &by {
        sample(out, "koa_dep_ingest_latency_max_seconds", &[("instrument", instrument)], *max);
    }
}

async fn metrics(State(st): State<Arc<StatusState>>) -> Response {
    let mut out = String::new();
    match st.archiver.db.status_counts().await {
        Ok(counts) => {
            family(&mut out, "koa_dep_files", "gauge", "koa_status rows by level, instrument, status and code.");
            for c in &counts {
                let level = c.level.to_string();
                let code = c.status_code.clone().unwrap_or_default();
                sample(&mut out, "koa_dep_files", &[("level", &level), ("instrument", &c.instrument), ("status", &c.status), ("code", &code)], c.count as f64);
            }
            family(&mut out, "koa_dep_queue_depth", "gauge", "Jobs waiting in the queue, by level.");
            let mut depth: std::collections::BTreeMap<i64, i64> = Default::default();
            for c in counts.iter().filter(|c| c.status == "QUEUED") {
                *depth.entry(c.level).or_default() += c.count;
            }
            for level in 0..=2 {
                depth.entry(level).or_default();
            }
            for (l, n) in depth {
                sample(&mut out, "koa_dep_queue_depth", &[("level", &l.to_string())], n as f64);
            }
            family(&mut out, "koa_dep_database_up", "gauge", "Whether the job store answered.");
            sample(&mut out, "koa_dep_database_up", &[], 1.0);
            ingest_latency(&mut out, &st.archiver.db).await;
        }
        Err(_) => {
            family(&mut out, "koa_dep_database_up", "gauge", "Whether the job store answered.");
            sample(&mut out, "koa_dep_database_up", &[], 0.0);
        }
    }
    st.archiver.metrics.render(&mut out);
    if let Some(d) = &st.daemon {
        for (name, v) in d.counters() {
            let metric = format!("koa_dep_daemon_{name}_total");
            family(&mut out, &metric, "counter", &format!("Daemon count of {name}."));
            sample(&mut out, &metric, &[], v as f64);
        }
        let f = d.faults();
        family(&mut out, "koa_dep_disk_full", "gauge", "Whether jobs wait for space on the archive disk.");
        sample(&mut out, "koa_dep_disk_full", &[], f.disk_short.is_some() as u8 as f64);
        family(&mut out, "koa_dep_journal_pending", "gauge", "Triggers in the journal not yet in the database.");
        sample(&mut out, "koa_dep_journal_pending", &[], f.journal_pending as f64);
        family(&mut out, "koa_dep_journal_outcomes", "gauge", "Job outcomes in the journal not yet recorded.");
        sample(&mut out, "koa_dep_journal_outcomes", &[], f.journal_outcomes as f64);
        let (used, budget) = d.memory();
        family(&mut out, "koa_dep_admitted_memory_bytes", "gauge", "Estimated memory of the running jobs.");
        sample(&mut out, "koa_dep_admitted_memory_bytes", &[], used as f64);
        family(&mut out, "koa_dep_memory_budget_bytes", "gauge", "Memory budget of the running jobs.");
        sample(&mut out, "koa_dep_memory_budget_bytes", &[], budget as f64);
        family(&mut out, "koa_dep_service_heartbeat_age_seconds", "gauge", "Seconds since each service's last heartbeat.");
        let services = d.services();
        for s in services.iter() {
            if let Some(a) = s.heartbeat_age_s {
                sample(&mut out, "koa_dep_service_heartbeat_age_seconds", &[("service", &s.name), ("instrument", &s.instrument)], a);
            }
        }
        family(&mut out, "koa_dep_service_silent", "gauge", "1 when a scheduled, alive service has written no file for its silent_minutes.");
        for s in services.iter() {
            sample(&mut out, "koa_dep_service_silent", &[("service", &s.name), ("instrument", &s.instrument)], if s.silent { 1.0 } else { 0.0 });
        }
        family(&mut out, "koa_dep_source_up", "gauge", "1 while a service's keyword source delivers broadcasts, 0 when it is down.");
        for s in services.iter().filter(|s| s.source_state.is_some()) {
            let up = if s.source_state == Some("DOWN") { 0.0 } else { 1.0 };
            sample(&mut out, "koa_dep_source_up", &[("service", &s.name), ("instrument", &s.instrument)], up);
        }
        family(&mut out, "koa_dep_source_problem", "gauge", "1 while a service's keyword source has an unresolved problem (down, a failed read, a missing key), by its code.");
        for s in services.iter() {
            if let Some((code, _)) = &s.source_problem {
                sample(&mut out, "koa_dep_source_problem", &[("service", &s.name), ("instrument", &s.instrument), ("code", code)], 1.0);
            }
        }
        family(&mut out, "koa_dep_source_problems_total", "counter", "Problems of each service's keyword source, by status code.");
        for s in services.iter() {
            for (code, n) in &s.source_problems {
                sample(&mut out, "koa_dep_source_problems_total", &[("service", &s.name), ("code", code)], *n as f64);
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

async fn healthz(State(st): State<Arc<StatusState>>) -> Response {
    let db = tokio::time::timeout(std::time::Duration::from_secs(5), st.archiver.db.status_counts()).await;
    let database = match db {
        Ok(Ok(_)) => "ok".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timeout".to_string(),
    };
    let faults = st.daemon.as_ref().map(|d| d.faults());
    let disk = faults.as_ref().and_then(|f| f.disk_short.clone());
    let ok = database == "ok" && disk.is_none();
    let mut body = serde_json::json!({"status": if ok { "ok" } else { "unhealthy" }, "database": database});
    if let Some(f) = faults {
        body["disk"] = serde_json::json!(disk.unwrap_or_else(|| "ok".into()));
        body["journal"] = serde_json::json!({"pending": f.journal_pending, "outcomes": f.journal_outcomes, "durable": f.journal_durable});
        body["queue_running"] = serde_json::json!(f.queue_running);
    }
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_tokens_and_urls() {
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(urlencode("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(urldecode(&urlencode("tök;en=1 %")), "tök;en=1 %");
        assert_eq!(urldecode("100%"), "100%");
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "other=1; koa_dep_token=s3cret%3B".parse().unwrap());
        assert_eq!(cookie_token(&h).as_deref(), Some("s3cret;"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn previews_only_from_inside_the_archive() {
        let root = tempfile::tempdir().unwrap();
        let lev0 = root.path().join("NIRES/20240315/lev0");
        std::fs::create_dir_all(&lev0).unwrap();
        std::fs::write(lev0.join("KP.20240315.1.00_red.jpg"), b"x").unwrap();
        std::fs::write(lev0.join("KP.20240315.1.00_green.jpg"), b"x").unwrap();
        assert_eq!(preview_path(root.path(), lev0.to_str().unwrap(), "KP.20240315.1.00"), Some(lev0.canonicalize().unwrap().join("KP.20240315.1.00_green.jpg")));
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("K.jpg"), b"x").unwrap();
        assert_eq!(preview_path(root.path(), outside.path().to_str().unwrap(), "K"), None);
        let sneaky = format!("{}/../../{}", lev0.display(), outside.path().display());
        assert_eq!(preview_path(root.path(), &sneaky, "K"), None);
    }
}
