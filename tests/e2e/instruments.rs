//! One generated frame of every instrument through the whole level-0 path
//! (each instrument's component in the sandbox), and the damage modes real
//! files arrive with.

use koa_dep::db::Status;
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::demo::services;
use koa_dep::samples::frames::{DAMAGES, Damage, INSTRUMENTS, Size, damaged, frame};
use koa_dep_tests::*;

fn setup(s: &Scratch) -> koa_dep::config::Config {
    let mut cfg = s.cfg.clone();
    let f = s.path("services.json");
    std::fs::write(&f, serde_json::to_string(&services()).unwrap()).unwrap();
    cfg.services.fixture = Some(f);
    cfg
}

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
        _ => unreachable!(),
    }
}

#[test]
fn a_frame_of_every_instrument_is_archived() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, setup(&s));
    let built: Vec<&str> = koa_dep::sandbox::registry::builtin_components().iter().map(|(n, _)| *n).collect();
    for required in ["deimos", "esi", "guider", "hires", "kcwi", "kpf", "lris", "mosfire", "nirc2", "nires", "nirspec", "osiris"] {
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
    let a = archiver(&rt, setup(&s));
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
