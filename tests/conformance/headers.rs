//! Real Keck headers of ../shared/data through their instrument components
//! (identify, evaluate, preview-plan) in the sandbox: the expected
//! instrument and prefix, and never a component failure.

use std::sync::Arc;

use koa_dep::pipeline::inspect::{Inspection, inspect};
use koa_dep_tests::*;

fn run(component: &str, rel: &str) -> Inspection {
    let cfg = Scratch::new().cfg;
    let sb = koa_dep::app::sandbox(&cfg).unwrap();
    let services = Arc::new(koa_dep::samples::demo::services());
    let out = inspect(&sb, services, &cfg, component, &component.to_uppercase(), &data_dir().join(rel), vec![]).unwrap();
    assert!(out.failure.is_none(), "{rel}: {:?}", out.failure);
    out
}

#[test]
fn nirc2_level0_files() {
    for f in ["dark_256_264_2_16_0.018_1.fits", "dark_416_504_2_4_0.045_100.fits", "flat_512_512_narrow_K+clear.fits"] {
        let out = run("nirc2", &format!("nirc2-lev0/{f}"));
        let id = out.identity.as_ref().unwrap_or_else(|| panic!("{f}: {:?}", out.identify_diagnostics));
        assert!(id.koaid.starts_with("N2.") && id.prefix == "N2", "{f}: {}", id.koaid);
        let ev = out.evaluation.as_ref().unwrap();
        assert!(ev.steps.len() > 15, "{f}");
        assert!(!ev.diagnostics.iter().any(|d| d.code == "CODE_ERROR"), "{f}: {:?}", ev.diagnostics);
    }
}

#[test]
fn lris_blue_keckdrpframework_file() {
    let out = run("lris", "keckdrpframework/569_0000.fits");
    let id = out.identity.as_ref().unwrap_or_else(|| panic!("{:?}", out.identify_diagnostics));
    assert_eq!(id.prefix, "LB");
    assert_eq!(id.koaid, "LB.20190925.20029.86");
    let ev = out.evaluation.as_ref().unwrap();
    assert!(!ev.diagnostics.iter().any(|d| d.code == "CODE_ERROR"), "{:?}", ev.diagnostics);
}

#[test]
fn lris_red_detector_fragments_fail_identification_cleanly() {
    for e in std::fs::read_dir(data_dir().join("pypeit")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("keck_lris_red") {
            continue;
        }
        // header fragments without INSTRUME or dates: a data diagnostic, not a crash
        let out = run("lris", &format!("pypeit/{name}"));
        assert!(out.identity.is_none(), "{name}");
        assert!(out.identify_diagnostics.iter().any(|d| d.code == "SET_INSTR_ERROR" || d.code == "KOAID_CREATE_FAIL"), "{name}: {:?}", out.identify_diagnostics);
    }
}

#[test]
fn kcwidrp_spectrum_is_not_a_kcwi_frame() {
    // INSTRUME 'test' and a dd/mm/yy DATE-OBS: no KCWI prefix, reported as such
    let out = run("kcwi", "kcwidrp/fear.fits");
    assert!(out.identity.is_none());
    assert!(out.identify_diagnostics.iter().any(|d| d.code == "KOAID_CREATE_FAIL" || d.code == "SET_INSTR_ERROR"));
}
