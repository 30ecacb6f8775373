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

/// An LRIS red Mark4 (Archon) frame as the instrument writes it: the LRIS
/// red primary header of the sample generator without data, and one image
/// extension whose header is a real detector fragment (amplifier geometry
/// with reversed sections, alternate WCS A..H) over PIXELCNT × LINECNT pixels.
fn lris_red_mark4(fragment: &std::path::Path, out: &std::path::Path) {
    use koa_dep::samples::{Data, Frame, FrameHdu, image_cards};
    let (_, sample) = koa_dep::samples::frames::frame("LRIS-RED", koa_dep::samples::frames::Size::Small, 1).unwrap();
    let structural = ["SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "PCOUNT", "GCOUNT", "BZERO", "BSCALE", "END"];
    let keep = |c: &koa_dep::fits::card::Card| !structural.contains(&c.key.as_str());
    let mut primary = image_cards(true, 16, &[]);
    primary.extend(sample.hdus[0].cards.iter().filter(|c| keep(c)).cloned());
    let det = koa_dep::fits::load(fragment).unwrap();
    let cards = &det.hdus[0].cards;
    let num = |k: &str| cards.iter().find(|c| c.key == k).and_then(|c| match c.value {
        koa_dep::fits::card::HValue::Int(i) => Some(i as u64),
        _ => None,
    });
    let (cols, rows) = (num("PIXELCNT").unwrap(), num("LINECNT").unwrap());
    let mut ext = image_cards(false, 16, &[cols, rows]);
    ext.push(koa_dep::samples::float("BZERO", 32768.0));
    ext.extend(cards.iter().filter(|c| keep(c)).cloned());
    let px: Vec<u16> = (0..rows).flat_map(|y| (0..cols).map(move |x| 1000 + ((x * 7 + y * 3) % 400) as u16)).collect();
    let frame = Frame { hdus: vec![FrameHdu { cards: primary, data: Data::None }, FrameHdu { cards: ext, data: Data::U16(px) }] };
    frame.write(out).unwrap();
}

#[test]
fn lris_red_mark4_frames_from_the_real_detector_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for e in std::fs::read_dir(data_dir().join("pypeit")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("keck_lris_red") {
            continue;
        }
        let file = dir.path().join(&name);
        lris_red_mark4(&e.path(), &file);
        let cfg = Scratch::new().cfg;
        let sb = koa_dep::app::sandbox(&cfg).unwrap();
        let services = Arc::new(koa_dep::samples::demo::services());
        let out = inspect(&sb, services, &cfg, "lris", "LRIS", &file, vec![]).unwrap();
        assert!(out.failure.is_none(), "{name}: {:?}", out.failure);
        let id = out.identity.as_ref().unwrap_or_else(|| panic!("{name}: {:?}", out.identify_diagnostics));
        assert_eq!(id.prefix, "LR", "{name}");
        let ev = out.evaluation.as_ref().unwrap();
        assert!(!ev.diagnostics.iter().any(|d| d.code == "CODE_ERROR" || d.severity == koa_dep::sandbox::bindings::types::Severity::Error), "{name}: {:?}", ev.diagnostics);
        // statistics per CCD and amplifier (IM0<ccd>MN0<amp>) as the keyword
        // table has them, never IMAGEMN (the reference never wrote it)
        let set: Vec<(String, koa_dep::sandbox::bindings::types::Value)> = ev
            .edits
            .iter()
            .filter_map(|e| match e {
                koa_dep::sandbox::bindings::types::Edit::Set(s) => Some((s.key.clone(), s.value.clone())),
                _ => None,
            })
            .collect();
        assert!(!set.iter().any(|(k, _)| k.starts_with("IMAGE")), "{name}: {set:?}");
        for (k, v) in set.iter().filter(|(k, _)| k.starts_with("IM0") && k.contains("MN0")) {
            assert!(matches!(v, koa_dep::sandbox::bindings::types::Value::Float(m) if (1150.0..1250.0).contains(m)), "{name}: {k} {v:?}");
        }
        // the red arm's preview: the detector extension, histogram-equalised
        assert_eq!(out.previews.len(), 1, "{name}");
        assert_eq!(out.previews[0].tiles[0].hdu, 1, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 6);
}

#[test]
fn kcwidrp_spectrum_is_not_a_kcwi_frame() {
    // INSTRUME 'test' and a dd/mm/yy DATE-OBS: no KCWI prefix, reported as such
    let out = run("kcwi", "kcwidrp/fear.fits");
    assert!(out.identity.is_none());
    assert!(out.identify_diagnostics.iter().any(|d| d.code == "KOAID_CREATE_FAIL" || d.code == "SET_INSTR_ERROR"));
}
