//! Benchmark: NIRES-size frames (2048×1024 float32, ~8.4 MB) through the
//! whole level-0 path on SQLite — load, both components, lev-0 write, JPEG,
//! tables, MD5 table, publish — in one warm process, as the daemon runs them.
//!
//! `cargo bench --bench level0 [-- [INSTRUMENT] [FRAMES]]` (default NIRES, 30;
//! `deimos 5` pushes full 8-CCD DEIMOS mosaics, preview on) prints per-frame wall time
//! (median, p95, max), the median of each step, the process's resident
//! memory before the frames and its peak while they ran (the peak is reset
//! after the warm-up through /proc/self/clear_refs, so it is the per-frame
//! high-water mark of a warm process, not the start-up's).
//!
//! The metadata table is part of the path: the KOA keyword tables are read
//! from `$KOA_DEP_KEYWORD_TABLES`, else `$KOA_DEP_SHARED_DATA/keyword-tables/head`,
//! else `../shared/data/keyword-tables/head` (the run stops when none exists).

use std::time::Instant;

use koa_dep::config::Config;
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::demo::{Obs, nires, services};

mod support;

/// A `/proc/self/status` field in MiB (VmRSS, VmHWM).
fn status_mib(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

/// CPU seconds (user + system) used by the process so far.
fn cpu_s() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Reset the peak resident set size (VmHWM) to the current one.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    koa_dep::app::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let frames: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(30);
    // an instrument's full-size sample frame instead of NIRES (e.g. `deimos`)
    let instrument = args.iter().find(|a| a.parse::<usize>().is_err()).map(|s| s.to_uppercase()).unwrap_or_else(|| "NIRES".into());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.archive.root = dir.path().join("archive");
    cfg.database.url = format!("sqlite://{}", dir.path().join("koa.db").display());
    cfg.components.cache_dir = Some(std::env::temp_dir().join("koa-dep-bench-cache"));
    let fixture = dir.path().join("services.json");
    std::fs::write(&fixture, serde_json::to_string(&services()).unwrap()).unwrap();
    cfg.services.fixture = Some(fixture);
    cfg.archive.keyword_tables = Some(support::keyword_tables());
    // the inputs, written before timing starts
    let inputs: Vec<_> = (0..=frames)
        .map(|i| {
            let (name, f) = if instrument == "NIRES" {
                let secs = 30000 + i as u32 * 7;
                let utc = format!("{:02}:{:02}:{:02}.52", secs / 3600, secs / 60 % 60, secs % 60);
                nires("spec", "object", "C272", &Obs::new("2024-03-15", &utc, 100 + i as u32), i as u64)
            } else {
                koa_dep::samples::frames::frame(&instrument, koa_dep::samples::frames::Size::Full, i as u32 * 7)
                    .unwrap_or_else(|| panic!("no sample frame for {instrument}"))
            };
            let p = dir.path().join("in").join(i.to_string()).join(name);
            f.write(&p).unwrap();
            p
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let a = std::sync::Arc::new(rt.block_on(koa_dep::app::archiver(cfg)).unwrap());
    let run = |p: &std::path::Path| {
        let (a, p) = (a.clone(), p.to_path_buf());
        let instrument = instrument.clone();
        rt.block_on(rt.spawn_blocking(move || a.archive_file(&instrument, &p, &JobOptions::default()).unwrap())).unwrap()
    };
    // warm-up: compiles (or loads) the components
    let w = run(&inputs[0]);
    assert_eq!(w.status, koa_dep::db::Status::Complete, "{:?}", w.diagnostics);
    assert!(w.products.iter().any(|p| p.to_string_lossy().ends_with(".metadata.table")), "metadata table written");
    let rss_before = status_mib("VmRSS");
    reset_peak();
    let cpu0 = cpu_s();
    let mut walls = Vec::new();
    let mut steps: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for p in &inputs[1..] {
        let t = Instant::now();
        let r = run(p);
        walls.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.status, koa_dep::db::Status::Complete, "{:?}", r.diagnostics);
        for (k, v) in r.timings {
            steps.entry(k).or_default().push(v * 1000.0);
        }
    }
    let n = walls.len();
    let cpu_per_frame = (cpu_s() - cpu0) / n as f64 * 1000.0;
    let shape = if instrument == "NIRES" { "2048x1024 float32".to_string() } else { "full-size sample frame".to_string() };
    println!("level-0 {instrument} {shape}, {n} frames (warm process, SQLite, services fixture)");
    println!(
        "  wall per frame: median {:.1} ms  p95 {:.1} ms  max {:.1} ms",
        pct(&mut walls.clone(), 0.5),
        pct(&mut walls.clone(), 0.95),
        pct(&mut walls, 1.0)
    );
    println!("  CPU per frame (user + system, both cores): {cpu_per_frame:.1} ms");
    let order = [
        "record", "load", "screen", "identify", "dqa", "validate", "dedupe", "write", "preview", "tables", "publish",
        "bookkeeping", "raw_copy",
    ];
    let line: Vec<String> =
        order.iter().filter_map(|k| steps.get_mut(*k).map(|v| format!("{k} {:.1}", pct(v, 0.5)))).collect();
    println!("  step medians (ms): {}", line.join(", "));
    println!("  resident: {rss_before:.1} MiB warm before the frames, peak {:.1} MiB while they ran", status_mib("VmHWM"));
}
