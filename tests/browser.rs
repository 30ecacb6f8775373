//! The status page in headless Chromium (Debian's `chromium`, installed by
//! `.ci/run`; `KOA_DEP_CHROMIUM` points elsewhere): the rendered DOM lists
//! the instruments, the recent files with thumbnails the browser actually
//! decoded, the outstanding errors — read-only without the token, with
//! acknowledge buttons with it — and a screenshot is drawn. Fails when
//! Chromium is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use koa_dep::db::{Outcome, Status};
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::demo::{Obs, nires};
use koa_dep_tests::*;

fn chromium() -> PathBuf {
    let p = std::env::var_os("KOA_DEP_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(p.is_file(), "Chromium not found at {} (apt-get install chromium, or set KOA_DEP_CHROMIUM)", p.display());
    p
}

/// Run headless Chromium on a URL with a fresh profile; `extra` picks the output.
fn headless(profile: &Path, url: &str, extra: &[&str]) -> std::process::Output {
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--window-size=1400,2000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("start chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn the_status_page_renders_in_headless_chromium() {
    let s = Scratch::new();
    let rt = runtime();
    let mut cfg = s.with_services();
    cfg.daemon.http_token = Some("operator-token".into());
    let a = archiver(&rt, cfg);
    let mut ids = Vec::new();
    for n in 1..=3u32 {
        let (name, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", &format!("08:2{n}:14.52"), n), n as u64);
        let p = s.path(&format!("sdata/{name}"));
        frame.write(&p).unwrap();
        let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
        assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
        ids.push(r.id);
    }
    rt.block_on(a.db.finish(ids[2], &Outcome { status: Some(Status::Error), status_code: Some("INGEST_ERROR".into()), ..Default::default() })).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(koa_dep::http::StatusState { archiver: a.clone(), daemon: None });
    let addr = rt.block_on(koa_dep::http::serve("127.0.0.1:0", state, stop_rx)).unwrap();
    let profile = tempfile::tempdir().unwrap();

    // read-only
    let dom = String::from_utf8(headless(profile.path(), &format!("http://{addr}/"), &["--dump-dom"]).stdout).unwrap();
    assert!(dom.contains("read-only"), "{dom}");
    assert!(dom.contains("<td>NIRES</td>"), "{dom}");
    assert!(dom.contains("INGEST_ERROR"), "{dom}");
    assert!(!dom.contains("Acknowledge</button>"), "no buttons without the token");
    for id in &ids[..2] {
        // the onload handler ran: the browser fetched and decoded the JPEG
        let img = format!("src=\"/preview/{id}\"");
        let tag = dom.split("<img ").find(|t| t.contains(&img)).unwrap_or_else(|| panic!("thumbnail {id} missing: {dom}"));
        assert!(tag.contains("data-loaded=\"yes\""), "thumbnail {id} not decoded by the browser: {tag}");
    }
    assert!(dom.contains("id=\"login\""), "the sign-in form: {dom}");
    // operator mode: the bookmarked token becomes the cookie, the browser follows back to /
    let dom = String::from_utf8(headless(profile.path(), &format!("http://{addr}/?token=operator-token"), &["--dump-dom"]).stdout).unwrap();
    assert!(dom.contains("Acknowledge</button>") && dom.contains("acknowledge enabled"), "{dom}");
    assert!(!dom.contains("operator-token"), "the token is neither in the page nor in its forms: {dom}");
    // a screenshot is drawn
    let shot = s.path("page.png");
    headless(profile.path(), &format!("http://{addr}/"), &[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a page with text and images, not a blank: {} bytes", png.len());
    let _ = stop_tx.send(true);
}
