//! The PI notice after IPAC ingested a level-0 file (spec ingest-callback.md
//! §4, defects fixed): once per (instrument, program, UT night, level) — the
//! `koa_pi_notify` insert is the dedupe, and a notice that could not be sent
//! is released for the next callback —, only for a clean COMPLETE row of a
//! program scheduled that night, at most `notify.pi_max_age_days` after it.
//! It runs after the reply (once DEP's job has recorded its outcome) and
//! never fails the callback. With
//! `notify.pi_mail` the PI gets it (the administrators in Bcc); without,
//! the administrators do (the reference's behaviour).

use chrono::{Datelike, NaiveDate};

use crate::notify::{Notifier, Outcome};
use crate::pipeline::Archiver;

/// What became of a notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PiResult {
    Sent(String),
    /// Not due (GUIDER, NIRC2 `_unp`, already sent, not scheduled, not clean…).
    Declined(String),
    Failed(String),
}

/// The UT date of a KOAID (`PP.YYYYMMDD.…`).
fn koaid_date(koaid: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(koaid.split('.').nth(1)?, "%Y%m%d").ok()
}

/// Send the notice of row `id` when it is due.
pub async fn notify(a: &Archiver, notifier: &Notifier, id: i64) -> PiResult {
    let declined = |why: String| {
        tracing::info!("PI notice for row {id} not sent: {why}");
        PiResult::Declined(why)
    };
    // IPAC may answer while DEP's job still finishes: wait for its outcome
    let mut tries = 0;
    let row = loop {
        match a.db.get(id).await {
            Ok(Some(r)) if (r.process_end_time.is_some() && r.lease_owner.is_none()) || tries >= 300 => break r,
            Ok(Some(_)) => tries += 1,
            Ok(None) => return declined("no such row".into()),
            Err(e) => return PiResult::Failed(e.to_string()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let koaid = row.koaid.clone().unwrap_or_default();
    if row.instrument == "GUIDER" || (row.instrument == "NIRC2" && koaid.contains("_unp")) || row.level != 0 {
        return declined(format!("{} {koaid}: no PI notice for these files", row.instrument));
    }
    let Some(semid) = row.semid.clone().filter(|s| !s.is_empty()) else { return declined(format!("{koaid}: no SEMID")) };
    let Some(utdate) = koaid_date(&koaid) else { return declined(format!("{koaid}: no UT date")) };
    let age = (chrono::Utc::now().date_naive() - utdate).num_days();
    if age > a.cfg.notify.pi_max_age_days {
        return declined(format!("{koaid}: the night is {age} days ago"));
    }
    if row.status != "COMPLETE" || row.status_code.as_deref().is_some_and(|c| !c.is_empty()) || row.status_code_ipac.as_deref().is_some_and(|c| !c.is_empty()) {
        return declined(format!("{koaid}: not clean ({} {:?} {:?})", row.status, row.status_code, row.status_code_ipac));
    }
    let (services, instrument, telnr) = (a.services.clone(), row.instrument.clone(), a.cfg.telescope(&row.instrument));
    let (sem, projcode) = semid.split_once('_').map(|(s, p)| (s.to_string(), p.to_string())).unwrap_or_default();
    let hst = (utdate - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let semid2 = semid.clone();
    let looked_up = tokio::task::spawn_blocking(move || {
        let scheduled = services.schedule(&hst, telnr, &instrument).map(|e| e.iter().any(|e| e.proj_code.eq_ignore_ascii_case(&projcode)));
        (scheduled, services.pi_email(&semid2))
    })
    .await;
    let Ok((scheduled, email)) = looked_up else { return PiResult::Failed("lookup task failed".into()) };
    match scheduled {
        Ok(true) => {}
        Ok(false) => return declined(format!("{semid} was not scheduled on {utdate} ({})", row.instrument)),
        Err(e) => return declined(format!("schedule of {utdate}: {e:?}")),
    }
    let (to, bcc) = if a.cfg.notify.pi_mail {
        match email {
            Ok(e) if !e.is_empty() => (vec![e], notifier.admins().to_vec()),
            Ok(_) | Err(_) => return declined(format!("no PI e-mail address for {semid}")),
        }
    } else {
        (notifier.admins().to_vec(), vec![])
    };
    let level = row.level;
    match a.db.claim_pi_notice(&row.instrument, &semid, utdate, level, &to.join(", ")).await {
        Ok(true) => {}
        Ok(false) => return declined(format!("{semid} {} {utdate}: already notified", row.instrument)),
        Err(e) => return PiResult::Failed(e.to_string()),
    }
    let subject = format!("The archiving and future release of your {} data", row.instrument);
    let body = body(&row.instrument, &sem, &semid, utdate, row.propint);
    match notifier.send(&to, &bcc, &subject, &body).await {
        Outcome::Mailed => PiResult::Sent(to.join(", ")),
        other => {
            // not sent: the next callback of that night may try again
            if let Err(e) = a.db.release_pi_notice(&row.instrument, &semid, utdate, level).await {
                tracing::warn!("PI notice of {semid}: releasing the claim failed: {e}");
            }
            PiResult::Failed(format!("{other:?}"))
        }
    }
}

/// The notice's text (koa-dep's own words; the reference's points).
fn body(instrument: &str, semester: &str, semid: &str, utdate: NaiveDate, propint: Option<i64>) -> String {
    let period = match propint {
        Some(m) => format!("{m} months"),
        None => "the period approved for your program".into(),
    };
    let release = propint.and_then(|m| utdate.checked_add_months(chrono::Months::new(m as u32)));
    let release = release.map(|d| format!(" (about {}-{:02})", d.year(), d.month())).unwrap_or_default();
    format!(
        "Dear Principal Investigator,\n\n\
         The {instrument} data of your program {semid} (semester {semester}) from the night of {utdate} (UT) are being \
         archived in real time by the Keck Observatory Archive (KOA).\n\n\
         During the night you can stream them through the Observers' Data Access Portal: \
         https://koa.ipac.caltech.edu/rti-gui/login\n\
         You can give others access to your proprietary data here: https://koa.ipac.caltech.edu/applications/KOA/grant.html\n\n\
         The data stay proprietary for {period} after the observation{release}, as approved by the Selecting Official; then \
         they become public (KOA's data policy: http://www2.keck.hawaii.edu/koa/public/KOA_data_policy.pdf). If the period \
         looks wrong, please contact your Selecting Official (http://www2.keck.hawaii.edu/koa/public/soList.html).\n\n\
         The archive: http://koa.ipac.caltech.edu — lost credentials: https://koa.ipac.caltech.edu/applications/Helpdesk\n\n\
         We welcome your feedback. KOA is a collaboration of the W. M. Keck Observatory and the NASA Exoplanet Science \
         Institute, funded by NASA.\n\n\
         The Keck Observatory Archive\nkoaadmin@keck.hawaii.edu\n"
    )
}
