//! Benchmark: a burst of NIRES-size frames (2048×1024 float32) through the
//! daemon — directory-watch source, journal, SQLite queue, admission, workers.
//!
//! `cargo bench --bench daemon -- [FRAMES] [RATE]`: FRAMES (default 500) are
//! generated first, then moved into the watched folder all at once (RATE 0,
//! the default) or RATE per second. Prints files/s over the burst and the
//! trigger-to-done latency (file appears → row COMPLETE) p50/p95/max.
//! `KOA_DEP_BENCH_JOBS=N` sets the jobs at once (default: the cores).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use koa_dep::config::Config;
use koa_dep::daemon::Daemon;
use koa_dep::samples::demo::{Obs, nires, services, watch_services};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn peak_rss_mib() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

fn main() {
    koa_dep::app::tune_allocator();
    let nums: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let frames = nums.first().copied().unwrap_or(500.0) as usize;
    let rate = nums.get(1).copied().unwrap_or(0.0);
    let dir = tempfile::tempdir_in(std::env::var_os("KOA_DEP_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into_os_string())).unwrap();
    let mut cfg = Config::default();
    cfg.archive.root = dir.path().join("archive");
    cfg.database.url = format!("sqlite://{}", dir.path().join("koa.db").display());
    cfg.components.cache_dir = Some(std::env::temp_dir().join("koa-dep-bench-cache"));
    let fixture = dir.path().join("services.json");
    std::fs::write(&fixture, serde_json::to_string(&services()).unwrap()).unwrap();
    cfg.services.fixture = Some(fixture);
    cfg.daemon.journal_dir = Some(dir.path().join("journal"));
    cfg.daemon.poll_s = 0.05;
    // KOA_DEP_BENCH_JOBS: jobs at once (default: the number of cores)
    cfg.daemon.max_jobs = std::env::var("KOA_DEP_BENCH_JOBS").ok().and_then(|v| v.parse().ok());
    let incoming = dir.path().join("incoming");
    cfg.service = watch_services(&incoming, ["NIRES"]);
    let watched = incoming.join("nires");
    std::fs::create_dir_all(&watched).unwrap();

    eprintln!("generating {frames} NIRES frames …");
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let inputs: Vec<(std::path::PathBuf, std::path::PathBuf)> = (0..frames)
        .map(|i| {
            let secs = 30000 + i as u32 * 7;
            let utc = format!("{:02}:{:02}:{:02}.52", secs / 3600, secs / 60 % 60, secs % 60);
            let (name, f) = nires("spec", "object", "C272", &Obs::new("2024-03-15", &utc, 100 + i as u32), i as u64);
            let p = staging.join(&name);
            f.write(&p).unwrap();
            (p, watched.join(&name))
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let d = std::sync::Arc::new(Daemon::new(cfg).await.unwrap());
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let d2 = d.clone();
        let task = tokio::spawn(async move {
            d2.run(async {
                let _ = rx.await;
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut appeared: HashMap<String, Instant> = HashMap::new();
        let t0 = Instant::now();
        for (i, (from, to)) in inputs.iter().enumerate() {
            if rate > 0.0 {
                let due = t0 + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            std::fs::rename(from, to).unwrap();
            appeared.insert(to.file_name().unwrap().to_string_lossy().to_string(), Instant::now());
        }
        let mut lat = Vec::new();
        let mut accepted_lat = Vec::new();
        let mut failed = 0;
        let mut last = t0;
        while lat.len() + failed < frames {
            tokio::time::sleep(Duration::from_millis(20)).await;
            for f in d.take_finished() {
                let end = f.done_at;
                last = last.max(end);
                if f.report.status != koa_dep::db::Status::Complete {
                    failed += 1;
                    eprintln!("{} {:?} {:?}", f.report.ofname, f.report.status, f.report.status_code);
                    continue;
                }
                let name = std::path::Path::new(&f.report.ofname).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let start = appeared.get(&name).copied().unwrap_or(t0);
                lat.push(end.duration_since(start).as_secs_f64());
                accepted_lat.push(f.latency_s);
            }
            if t0.elapsed() > Duration::from_secs(3600) {
                break;
            }
        }
        let span = last.duration_since(t0).as_secs_f64();
        let _ = stop.send(());
        task.await.unwrap().unwrap();
        let n = lat.len();
        println!(
            "daemon burst: {n} frames COMPLETE ({failed} failed) in {span:.1} s → {:.1} files/s; arrival {}",
            n as f64 / span,
            if rate > 0.0 { format!("{rate}/s") } else { "all at once".into() }
        );
        if n > 0 {
            println!(
                "trigger-to-done: p50 {:.3} s  p95 {:.3} s  max {:.3} s   peak RSS {:.0} MiB",
                pct(&mut lat, 0.5),
                pct(&mut lat, 0.95),
                pct(&mut lat, 1.0),
                peak_rss_mib()
            );
            println!("accepted-to-done (journal → COMPLETE): p50 {:.3} s  p95 {:.3} s", pct(&mut accepted_lat, 0.5), pct(&mut accepted_lat, 0.95));
        }
    });
}
