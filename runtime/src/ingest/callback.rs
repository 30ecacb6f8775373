//! What a parsed callback does (spec ingest-callback.md §3–§5, defects
//! fixed): IPAC's outcome recorded on the row — conditional, so a row
//! already answered is not reopened unless `reingest`, and an identical
//! replay is a harmless no-op —, the DRPs' products queued, the admin mail
//! through the one error path, the PI notice for level 0. The HTTP layer
//! ([`crate::http`]) authenticates and calls [`handle`].
//!
//! Honest HTTP codes: 200 done (or nothing to do), 400 a bad query, 404 no
//! such row, 409 the row's state does not allow it, 503 the database is
//! down. The body keeps the reference's shape (`apiStatus`, `ingestErrors`,
//! `timestamp`, the parsed parameters) plus `result`, what happened.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::params::{self, IngestRequest, IpacStatus, Koaid, Mode};
use crate::db::StatusRow;
use crate::db::ingest::IpacOutcome;
use crate::notify::Notifier;
use crate::pipeline::Archiver;

/// The answer to a callback.
#[derive(Debug)]
pub struct Answer {
    pub http: u16,
    pub body: Value,
    /// A level-0 row that IPAC answered COMPLETE: its PI notice is due.
    pub pi_notice: Option<i64>,
}

fn reply(http: u16, errors: Vec<String>, mut echo: Map<String, Value>, result: &str) -> Answer {
    let ok = errors.is_empty();
    echo.insert("apiStatus".into(), json!(if ok { "COMPLETE" } else { "ERROR" }));
    echo.insert("ingestErrors".into(), json!(errors));
    echo.insert("timestamp".into(), json!(crate::db::now().format("%Y-%m-%d %H:%M:%S").to_string()));
    echo.insert("result".into(), json!(result));
    Answer { http, body: Value::Object(echo), pi_notice: None }
}

/// Handle one authenticated callback from `caller`.
pub async fn handle(a: &Archiver, notifier: &Notifier, caller: &str, query: &[(String, String)]) -> Answer {
    let req = match params::parse(query, &params::Instruments::koa()) {
        Ok(r) => r,
        Err(e) => {
            let instrument = e.instrument.clone().unwrap_or_else(|| "None".into());
            notifier.report(&instrument, "API_STATUS_ERROR", &format!("ingest callback from {caller}: {}", e.errors.join("; "))).await;
            return reply(400, e.errors, e.echo, "refused: the query is not valid");
        }
    };
    tracing::info!("ingest callback from {caller}: {} {} {:?}", req.instrument, req.ingest_type.as_str(), req.mode);
    let answer = match &req.mode {
        Mode::IpacOne { koaid } => ipac_one(a, &req, koaid).await,
        Mode::IpacNight { utdate } => ipac_night(a, &req, *utdate).await,
        Mode::DrpOne { koaid, datadir } => drp_one(a, &req, koaid, datadir, req.ingest_type.level()).await,
        Mode::DrpNight { utdate, datadir } => drp_night(a, &req, *utdate, datadir.as_deref()).await,
    };
    if req.testonly {
        return answer;
    }
    // admin mail after the database work, never failing the request (bug 20)
    if req.status == Some(IpacStatus::Error) && answer.http == 200 {
        let text = format!("{}: IPAC reports {}", koaid_of(&req), req.ingest_error.as_deref().unwrap_or(""));
        notifier.report(&req.instrument, "IPAC_STATUS_ERROR", &text).await;
    } else if answer.http >= 400 {
        let errors = answer.body["ingestErrors"].as_array().map(|v| v.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "));
        notifier.report(&req.instrument, "DATABASE_ERROR", &format!("ingest callback from {caller}: {}", errors.unwrap_or_default())).await;
    }
    answer
}

fn koaid_of(req: &IngestRequest) -> String {
    match &req.mode {
        Mode::IpacOne { koaid } | Mode::DrpOne { koaid, .. } => koaid.to_string(),
        Mode::IpacNight { utdate } => format!("{} level-2 night {utdate}", req.instrument),
        Mode::DrpNight { .. } => format!("{} level-2 night", req.instrument),
    }
}

/// The row of (instrument, KOAID, level), or the answer why not.
async fn row_of(a: &Archiver, req: &IngestRequest, koaid: &Koaid, level: i64) -> Result<StatusRow, Answer> {
    match a.db.by_koaid(level, &koaid.to_string()).await {
        Ok(Some(r)) if r.instrument.eq_ignore_ascii_case(&req.instrument) => Ok(r),
        Ok(Some(r)) => Err(reply(
            409,
            vec![format!("koaid {koaid} at level {level} belongs to instrument {}, not {}", r.instrument, req.instrument)],
            req.echo.clone(),
            "refused",
        )),
        Ok(None) => Err(reply(404, vec![format!("lev{level} koaid {koaid} is not in the database")], req.echo.clone(), "refused")),
        Err(e) => Err(reply(503, vec![format!("Database query error: {e}")], req.echo.clone(), "not recorded: the database did not answer")),
    }
}

/// IPAC's outcome as the row records it.
fn outcome<'a>(req: &'a IngestRequest, code: &'a str) -> IpacOutcome<'a> {
    let m = req.metrics.expect("IPAC modes carry metrics");
    let status = match req.status {
        Some(IpacStatus::Error) => "ERROR",
        _ => "COMPLETE",
    };
    IpacOutcome {
        ingest_start_time: m.ingest_start_time,
        ingest_copy_start_time: m.ingest_copy_start_time,
        ingest_copy_end_time: m.ingest_copy_end_time,
        ingest_end_time: m.ingest_end_time,
        status,
        code_ipac: code,
        message: req.ingest_error.as_deref(),
        reingest: req.reingest,
    }
}

/// `status_code_ipac`: '' for a clean COMPLETE, IPAC's text cut to 30 characters otherwise.
fn code_ipac(req: &IngestRequest) -> String {
    match req.status {
        Some(IpacStatus::Complete) | None => String::new(),
        _ => req.ingest_error.as_deref().unwrap_or("").chars().take(30).collect(),
    }
}

/// Record IPAC's outcome on one row; Ok(what happened) or the refusal.
async fn record(a: &Archiver, req: &IngestRequest, row: &StatusRow) -> Result<&'static str, (u16, String)> {
    let code = code_ipac(req);
    let want = outcome(req, &code);
    if !matches!(row.status.as_str(), "TRANSFERRED" | "ERROR" | "COMPLETE") {
        return Err((409, format!("{}: current status ({}) does not allow request", row.koaid.as_deref().unwrap_or("-"), row.status)));
    }
    if row.ipac_response_time.is_some() && !req.reingest {
        // the same answer again is harmless; another answer needs reingest
        let same = row.status == want.status && row.status_code_ipac.as_deref().unwrap_or("") == code;
        return if same {
            Ok("already recorded: nothing changed")
        } else {
            Err((409, format!("{}: ipac_response_time already exists (use reingest=true to replace it)", row.koaid.as_deref().unwrap_or("-"))))
        };
    }
    if req.testonly {
        return Ok("testonly: valid, nothing changed");
    }
    match a.db.record_ipac(row.id, &want).await {
        Ok(true) => Ok("recorded"),
        Ok(false) => Err((409, format!("{}: the row changed meanwhile; nothing recorded", row.koaid.as_deref().unwrap_or("-")))),
        Err(e) => Err((503, format!("Database query error: {e}"))),
    }
}

async fn ipac_one(a: &Archiver, req: &IngestRequest, koaid: &Koaid) -> Answer {
    let level = req.ingest_type.level();
    let row = match row_of(a, req, koaid, level).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match record(a, req, &row).await {
        Ok(result) => {
            let mut ans = reply(200, vec![], req.echo.clone(), result);
            if level == 0 && result == "recorded" && req.status != Some(IpacStatus::Error) {
                ans.pi_notice = Some(row.id);
            }
            ans
        }
        Err((http, e)) => reply(http, vec![e], req.echo.clone(), "refused"),
    }
}

async fn ipac_night(a: &Archiver, req: &IngestRequest, utdate: chrono::NaiveDate) -> Answer {
    let rows = match a.db.level2_of_night(&req.instrument, utdate).await {
        Ok(r) => r,
        Err(e) => return reply(503, vec![format!("Database query error: {e}")], req.echo.clone(), "not recorded"),
    };
    if rows.is_empty() {
        return reply(404, vec![format!("no level-2 rows of {} for {utdate}", req.instrument)], req.echo.clone(), "refused");
    }
    let (mut errors, mut done, mut worst) = (Vec::new(), 0, 200);
    for row in &rows {
        match record(a, req, row).await {
            Ok(_) => done += 1,
            Err((http, e)) => {
                worst = worst.max(http);
                errors.push(e);
            }
        }
    }
    let http = if errors.is_empty() { 200 } else { worst };
    reply(http, errors, req.echo.clone(), &format!("{done} of {} level-2 rows recorded", rows.len()))
}

/// A DRP's product folder, resolved, inside the accepted roots.
fn drp_folder(a: &Archiver, datadir: &str) -> Result<String, String> {
    let resolved = crate::paths::resolve_input(Path::new(datadir)).map_err(|_| format!("datadir ({datadir}) does not exist"))?;
    if !resolved.is_dir() {
        return Err(format!("datadir ({datadir}) is not a folder"));
    }
    if !crate::paths::under_roots(&resolved, Path::new(datadir), &a.cfg.daemon.accept_roots) {
        return Err(format!("datadir ({datadir}) is not under {}", a.cfg.daemon.accept_roots.join(" or ")));
    }
    Ok(resolved.display().to_string())
}

async fn drp_one(a: &Archiver, req: &IngestRequest, koaid: &Koaid, datadir: &str, level: i64) -> Answer {
    let datadir = match drp_folder(a, datadir) {
        Ok(d) => d,
        Err(e) => return reply(400, vec![e], req.echo.clone(), "refused"),
    };
    if let Err(answer) = row_of(a, req, koaid, 0).await {
        return answer; // a product of a frame KOA does not have
    }
    let k = koaid.to_string();
    let existing = match a.db.by_koaid(level, &k).await {
        Ok(r) => r,
        Err(e) => return reply(503, vec![format!("Database query error: {e}")], req.echo.clone(), "not queued"),
    };
    let mut echo = req.echo.clone();
    echo.insert("statusMessage".into(), json!(format!("{k} added to DRP archiving queue")));
    if req.testonly {
        return reply(200, vec![], echo, "testonly: valid, nothing queued");
    }
    let queued = match existing {
        None => a
            .db
            .insert_job(&crate::db::NewJob {
                level,
                instrument: &req.instrument,
                service: Some("DRP"),
                ofname: &datadir,
                status: crate::db::Status::Queued,
                reprocess: false,
                transfer: true,
                stage_file: Some(&datadir),
                koaid: Some(&k),
            })
            .await
            .map(|_| true),
        Some(_) if !req.reingest => {
            return reply(409, vec![format!("{k} already archived at level {level}, use reingest=true to replace")], req.echo.clone(), "refused");
        }
        Some(row) => match a.db.archive_and_reset(row.id).await {
            Ok(()) => a.db.requeue_drp(row.id, &datadir).await,
            Err(e) => Err(e),
        },
    };
    match queued {
        Ok(true) => reply(200, vec![], echo, "queued"),
        Ok(false) => reply(409, vec![format!("{k}: a job holds the level-{level} row now")], req.echo.clone(), "refused"),
        Err(e) => reply(503, vec![format!("error adding to koa_status: {e}")], req.echo.clone(), "not queued"),
    }
}

/// The most files a slit-mask night's folder walk looks at.
const MAX_WALK: usize = 20_000;

async fn drp_night(a: &Archiver, req: &IngestRequest, _utdate: Option<chrono::NaiveDate>, datadir: Option<&str>) -> Answer {
    let Some(datadir) = datadir else {
        // koa-dep queues every level-2 product when it is announced: no row waits for the night's end
        return reply(200, vec![], req.echo.clone(), "nothing waiting: level-2 products are queued as they are announced");
    };
    let folder = match drp_folder(a, datadir) {
        Ok(d) => d,
        Err(e) => return reply(400, vec![e], req.echo.clone(), "refused"),
    };
    // the KOAIDs of this instrument's frames in the products' names (bounded walk, bug 17)
    let instruments = params::Instruments::koa();
    let mut koaids = std::collections::BTreeSet::new();
    for entry in walkdir::WalkDir::new(&folder).max_depth(4).into_iter().filter_map(Result::ok).take(MAX_WALK) {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".fits") {
            continue;
        }
        for piece in name.split('_') {
            let candidate: String = piece.chars().take(20).collect();
            if let Ok(k) = Koaid::parse_fits(&format!("{candidate}.fits"), &instruments) {
                if instruments.instrument_of_prefix(&k.prefix) == Some(req.instrument.as_str()) {
                    koaids.insert(k.to_string());
                }
            }
        }
    }
    let (mut queued, mut errors) = (Vec::new(), Vec::new());
    for k in &koaids {
        let koaid = Koaid::parse_fits(&format!("{k}.fits"), &instruments).expect("parsed above");
        let ans = drp_one(a, req, &koaid, &folder, 2).await;
        if ans.http == 200 {
            queued.push(k.clone());
        } else if let Some(e) = ans.body["ingestErrors"].as_array() {
            errors.extend(e.iter().filter_map(Value::as_str).map(str::to_string));
        }
    }
    let mut echo = req.echo.clone();
    echo.insert("koaid".into(), json!(""));
    if !queued.is_empty() {
        echo.insert("statusMessage".into(), json!(format!("{} added to DRP archiving queue", queued.join(" "))));
    }
    let http = if errors.is_empty() { 200 } else { 409 };
    reply(http, errors, echo, &format!("{} of {} products queued", queued.len(), koaids.len()))
}
