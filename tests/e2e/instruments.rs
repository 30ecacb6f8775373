//! One generated frame of every instrument through the whole level-0 path
//! (each instrument's component in the sandbox), and the damage modes real
//! files arrive with.

use koa_dep::db::Status;
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::frames::{DAMAGES, Damage, INSTRUMENTS, Size, damaged, frame};
use koa_dep_tests::*;

fn expected_prefix(instrument: &str) -> &'static str {
    match instrument {
        "DEIMOS" => "DE",
        "ESI" => "ES",
        "GUIDER" => "GR",
        "HIRES" => "HI",
        "KCWI" => "KB",
        "KPF" => "KP",
        "LRIS" => "LB",
        "LRIS-RED" => "LR",
        "MOSFIRE" => "MF",
        "NIRC2" => "N2",
        "NIRES" => "NR",
        "NIRSPEC" => "NS",
        "OSIRIS" => "OI",
        "SCALES" => "SS",
        _ => unreachable!(),
    }
}

#[test]
fn a_frame_of_every_instrument_is_archived() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    let built: Vec<&str> = koa_dep::sandbox::registry::builtin_components().iter().map(|(n, _)| *n).collect();
    for required in ["deimos", "esi", "guider", "hires", "kcwi", "kpf", "lris", "mosfire", "nirc2", "nires", "nirspec", "osiris", "scales"] {
        assert!(built.contains(&required), "component {required} is not built in");
    }
    let mut all: Vec<&str> = INSTRUMENTS.iter().copied().filter(|i| built.contains(&i.to_lowercase().as_str())).collect();
    all.push("LRIS-RED");
    for (i, instrument) in all.iter().enumerate() {
        let (name, f) = frame(instrument, Size::Small, i as u32).unwrap();
        let p = s.path(&format!("sdata/{}/{name}", instrument.to_lowercase()));
        f.write(&p).unwrap();
        let component = instrument.trim_end_matches("-RED");
        let r = archive(&rt, &a, component, &p, JobOptions::default());
        let c = codes(&r);
        assert_eq!(r.status, Status::Complete, "{instrument}: {:?}", r.diagnostics);
        assert!(!c.iter().any(|c| c.starts_with("COMPONENT_") || c == "STEP_FAILED" || c == "CODE_ERROR"), "{instrument}: {c:?}");
        let koaid = r.koaid.clone().unwrap();
        assert!(koaid.starts_with(&format!("{}.", expected_prefix(instrument))), "{instrument}: {koaid}");
        assert!(r.products.iter().any(|p| p.extension().is_some_and(|e| e == "jpg")), "{instrument}: no preview {:?}", r.diagnostics);
        let steps = r.steps.len();
        assert!(steps > 10, "{instrument}: {steps} steps reported");
    }
}

#[test]
fn damaged_frames_end_with_their_codes() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    for (i, d) in DAMAGES.iter().enumerate() {
        let (name, f) = frame("NIRES", Size::Small, 40 + i as u32).unwrap();
        let p = s.path(&format!("sdata/nires/{i}/{name}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, damaged(&f, *d)).unwrap();
        let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
        let c = codes(&r);
        let (status, code) = match d {
            Damage::MissingEnd => (Status::Complete, "MISSING_END"),
            Damage::TruncatedHeader => (Status::Invalid, "CORRUPTED_HDU"),
            Damage::ShortData => (Status::Invalid, "CORRUPTED_HDU"),
            Damage::ZeroBytes => (Status::Invalid, "EMPTY_FILE"),
            Damage::NotFits => (Status::Invalid, "UNREADABLE_FITS"),
            Damage::DuplicatedKeywords => (Status::Complete, "DUPLICATE_KEYWORD"),
            Damage::StringNumbers => (Status::Complete, "METADATA_SCHEMA_MISSING"),
            Damage::LowercaseLogicals => (Status::Complete, "METADATA_SCHEMA_MISSING"),
            Damage::ChecksumMismatch => (Status::Complete, "CHECKSUM_MISMATCH"),
        };
        assert_eq!(r.status, status, "{d:?}: {c:?} {:?}", r.message);
        assert!(c.contains(&code.to_string()), "{d:?}: {code} not in {c:?}");
    }
}

/// A preview that fails — a mosaic whose DETSEC does not parse, or a render
/// over its memory cap — is a MAKE_JPG_ERROR warning: the file is archived.
#[test]
fn failed_previews_are_warnings_and_the_file_is_archived() {
    use koa_dep::fits::HValue;
    let s = Scratch::new();
    let rt = runtime();
    // a DEIMOS mosaic with an unparsable DETSEC
    let a = archiver(&rt, s.with_services());
    let (name, mut f) = frame("DEIMOS", Size::Small, 70).unwrap();
    let det = f.hdus[3].cards.iter_mut().find(|c| c.key == "DETSEC").expect("DETSEC");
    det.value = HValue::Text("[garbage]".into());
    let p = s.path(&format!("sdata/deimos/{name}"));
    f.write(&p).unwrap();
    let r = archive(&rt, &a, "DEIMOS", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let jpg = r.diagnostics.iter().find(|d| d.code == "MAKE_JPG_ERROR").unwrap_or_else(|| panic!("{:?}", r.diagnostics));
    assert!(jpg.message.contains("DETSEC"), "{}", jpg.message);
    assert!(!r.products.iter().any(|p| p.extension().is_some_and(|e| e == "jpg")));
    assert!(r.products.iter().any(|p| p.extension().is_some_and(|e| e == "fits")));
    // a thumbnail over its memory cap (1 MiB for a 2048x1024 render)
    let mut cfg = s.with_services();
    cfg.archive.root = s.path("archive-capped");
    cfg.database.url = format!("sqlite://{}", s.path("capped.db").display());
    cfg.components.limits.insert("thumbnail".into(), koa_dep::config::ComponentLimits { memory_mib: 1, deadline_s: 30.0 });
    let a = archiver(&rt, cfg);
    let (name, f) = frame("NIRES", Size::Full, 71).unwrap();
    let p = s.path(&format!("sdata/nires/{name}"));
    f.write(&p).unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let jpg = r.diagnostics.iter().find(|d| d.code == "MAKE_JPG_ERROR").unwrap_or_else(|| panic!("{:?}", r.diagnostics));
    assert!(jpg.message.contains("COMPONENT_OOM"), "{}", jpg.message);
    assert!(r.products.iter().any(|p| p.to_string_lossy().ends_with(".md5sum.table")));
}

/// OSIRIS's critical run_drp step (issue 16 §12): the configured command
/// runs with the UT date appended, before anything is published; a failing
/// or overrunning command ends the job ERROR RUN_DRP_ERROR with nothing
/// published, its output in the job log.
#[test]
fn osiris_runs_its_drp_command_bounded() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let rt = runtime();
    let calls = s.path("drp-calls.txt");
    let script = |name: &str, body: &str| {
        let p = s.path(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let ok = script("drp-ok.sh", &format!("echo \"$@\" >> {}; echo reduced", calls.display()));
    let fails = script("drp-fails.sh", "echo broken >&2; exit 3");
    let hangs = script("drp-hangs.sh", "sleep 30");
    for (n, (cmd, timeout, outcome)) in
        [(format!("{} --night", ok.display()), 60.0, None), (fails.display().to_string(), 60.0, Some("exit status: 3")), (hangs.display().to_string(), 0.5, Some("killed"))]
            .into_iter()
            .enumerate()
    {
        let mut cfg = s.with_services();
        cfg.archive.root = s.path(&format!("archive-{n}"));
        cfg.database.url = format!("sqlite://{}", s.path(&format!("drp-{n}.db")).display());
        let ic = cfg.instruments.entry("OSIRIS".into()).or_default();
        ic.drp_command = Some(cmd.clone());
        ic.drp_timeout_s = Some(timeout);
        let a = archiver(&rt, cfg);
        let (name, f) = frame("OSIRIS", Size::Small, 80 + n as u32).unwrap();
        let p = s.path(&format!("sdata/osiris{n}/{name}"));
        f.write(&p).unwrap();
        let t = std::time::Instant::now();
        let r = archive(&rt, &a, "OSIRIS", &p, JobOptions::default());
        let lev0 = s.path(&format!("archive-{n}/OSIRIS/20240315/lev0"));
        match outcome {
            None => {
                assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
                assert_eq!(std::fs::read_to_string(&calls).unwrap(), "--night 2024-03-15\n");
                let log = std::fs::read_to_string(lev0.join(format!("{}.log", r.koaid.clone().unwrap()))).unwrap();
                assert!(log.contains("reduced"), "the command's output is logged: {log}");
            }
            Some(why) => {
                assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("RUN_DRP_ERROR")), "{cmd}: {:?}", r.message);
                assert!(r.message.as_deref().unwrap_or("").contains(why), "{:?}", r.message);
                assert!(!lev0.join(format!("{}.md5sum.table", r.koaid.clone().unwrap())).exists(), "nothing published");
                assert!(t.elapsed() < std::time::Duration::from_secs(20), "bounded: {:?}", t.elapsed());
            }
        }
    }
}
