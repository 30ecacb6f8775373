//! The sandbox under a deliberately misbehaving component: endless loop,
//! unbounded allocation, panic, stack overflow and an oversized result each
//! end their job with their own status code within the deadline; the process
//! stays up, its memory returns near the baseline, and a normal NIRES job
//! right after succeeds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use koa_dep::config::ComponentLimits;
use koa_dep::db::Status;
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::demo::{Obs, nires};
use koa_dep_tests::*;

fn misbehave_wasm() -> PathBuf {
    PathBuf::from(koa_dep::sandbox::registry::artifact_dir()).join("misbehave.wasm")
}

/// Resident set size of this process in bytes, after handing the
/// allocator's free pages back to the system (glibc keeps freed memory in
/// per-thread arenas; a leak is memory that stays after the trim).
fn rss() -> u64 {
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe { libc::malloc_trim(0) };
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Resident memory is a property of the whole process, and the other tests
/// of this binary run in parallel threads: the measured test runs alone in
/// a child process of this test binary.
#[test]
fn misbehaving_components_end_their_jobs_and_the_process_goes_on() {
    const CHILD: &str = "KOA_DEP_SANDBOX_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return misbehaving_components_alone();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["sandbox::misbehaving_components_end_their_jobs_and_the_process_goes_on", "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

fn misbehaving_components_alone() {
    // the process as the daemon configures it
    koa_dep::app::tune_allocator();
    let s = Scratch::new();
    let mut cfg = s.cfg.clone();
    cfg.components.files.insert("misbehave".into(), misbehave_wasm());
    cfg.components.limits.insert("misbehave".into(), ComponentLimits { memory_mib: 64, deadline_s: 1.0 });
    cfg.instruments.entry("NIRES".into()).or_default().telescope = Some(2);
    let rt = runtime();
    let a = archiver(&rt, cfg);
    // a frame for the misbehaving "instrument"
    let (name, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", 17), 9);
    let input = s.path(&format!("in/{name}"));
    frame.write(&input).unwrap();
    // warm up: compile the components and touch the code paths once
    let r = archive(&rt, &a, "MISBEHAVE", &input, JobOptions { context: vec![("misbehave".into(), "ok".into())], ..Default::default() });
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let modes = [
        ("loop", "COMPONENT_TIMEOUT"),
        ("alloc", "COMPONENT_OOM"),
        ("panic", "COMPONENT_PANIC"),
        ("stack", "COMPONENT_STACK_OVERFLOW"),
        ("shadow-stack", "COMPONENT_TRAP"),
        ("oversize", "COMPONENT_OVERSIZE"),
        ("identify-loop", "COMPONENT_TIMEOUT"),
    ];
    let run_all = || {
        for (mode, code) in modes {
            let t = Instant::now();
            let opts = JobOptions { context: vec![("misbehave".into(), mode.into())], reprocess: true, ..Default::default() };
            let r = archive(&rt, &a, "MISBEHAVE", &input, opts);
            let took = t.elapsed();
            assert_eq!(r.status, Status::Error, "{mode}: {:?}", r.diagnostics);
            assert_eq!(r.status_code.as_deref(), Some(code), "{mode}: {:?}", r.message);
            assert!(took < Duration::from_secs(5), "{mode} took {took:?}");
            let row = rt.block_on(a.db.get(r.id)).unwrap().unwrap();
            assert_eq!((row.status.as_str(), row.status_code.as_deref()), ("ERROR", Some(code)), "{mode}");
            if std::env::var_os("KOA_DEP_SANDBOX_TRACE").is_some() {
                eprintln!("after {mode}: {} MiB", rss() >> 20);
            }
        }
    };
    // the first round warms the host's allocator; three more rounds must not
    // grow the process: a store kept alive would hold its 64 MiB each time
    run_all();
    let baseline = rss();
    for _ in 0..3 {
        run_all();
    }
    let after = rss();
    assert!(after < baseline + (40 << 20), "memory grew from {} MiB to {} MiB", baseline >> 20, after >> 20);
    // a normal NIRES job right after
    let (name, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:30:00.00", 18), 10);
    let good = s.path(&format!("in/{name}"));
    frame.write(&good).unwrap();
    let r = archive(&rt, &a, "NIRES", &good, JobOptions::default());
    assert!(matches!(r.status, Status::Complete), "{:?}", r.diagnostics);
    assert!(r.products.iter().any(|p| p.extension().is_some_and(|e| e == "jpg")));
}

#[test]
fn stack_overflow_is_reported_as_such() {
    let s = Scratch::new();
    let mut cfg = s.cfg.clone();
    cfg.components.files.insert("misbehave".into(), misbehave_wasm());
    let sb = koa_dep::app::sandbox(&cfg).unwrap();
    let (_, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", 17), 9);
    let input = s.path("x.fits");
    frame.write(&input).unwrap();
    let services = std::sync::Arc::new(koa_dep::services::Offline);
    let out = koa_dep::pipeline::inspect::inspect(&sb, services, &cfg, "misbehave", "MISBEHAVE", &input, vec![("misbehave".into(), "stack".into())]).unwrap();
    let f = out.failure.expect("failure");
    assert_eq!(f.code, "COMPONENT_STACK_OVERFLOW");
    assert!(f.message.contains("wasm stack overflow"), "{}", f.message);
    assert!(f.message.len() < 300, "a short message, not a backtrace: {}", f.message);
    let out = koa_dep::pipeline::inspect::inspect(&sb, std::sync::Arc::new(koa_dep::services::Offline), &cfg, "misbehave", "MISBEHAVE", &input, vec![("misbehave".into(), "panic".into())]).unwrap();
    let f = out.failure.expect("failure");
    assert_eq!(f.code, "COMPONENT_PANIC");
    assert!(f.message.contains("unreachable"), "a guest panic is an unreachable trap: {}", f.message);
}

#[test]
fn components_have_no_clock_no_files_and_report_their_wit_version() {
    let cfg = Scratch::new().cfg;
    let sb = koa_dep::app::sandbox(&cfg).unwrap();
    let info = sb.registry().info();
    let nires = info.iter().find(|i| i.name == "nires").expect("nires registered");
    assert_eq!(nires.wit, "koa:dep@0.4.0");
    assert_eq!(nires.sha256.len(), 64);
    assert_eq!(nires.memory_mib, 256);
    assert!(info.iter().any(|i| i.name == "thumbnail"));
}
