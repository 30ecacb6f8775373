use koa_sdk::testing::{FixtureHost, card, context, edited, extension, primary, program};
use koa_sdk::types::{HduKind, Severity, Value};
use koa_sdk::{evaluate, identify, preview_plan, stopped};

use super::*;

fn header() -> Vec<koa_sdk::types::Card> {
    vec![
        card("INSTRUME", "NIRC2"),
        card("DATE-OBS", "2024-03-15"),
        card("UTC", "08:21:14.52"),
        card("FILENAME", "n0017.fits"),
        card("OUTDIR", "/s/sdata903/nirc2eng/2024mar15/"),
        card("PROGNAME", "U123"),
        card("IMTYPE", "object"),
        card("CAMNAME", "narrow"),
        card("GRSNAME", "clear"),
        card("MAXWAVE", 2.3),
        card("MINWAVE", 1.95),
        card("CENWAVE", 2.12),
        card("COADDS", 10i64),
        card("ITIME", 2.0),
        card("PSINAME", "open"),
        card("PSONAME", "open"),
        card("ROTMODE", "position angle"),
        card("ROTPOSN", 10.448),
        card("RA", "02:13:45.00"),
        card("DEC", "-00:30:00.0"),
        card("EQUINOX", 2000.0),
        card("NAXIS1", 40i64),
        card("NAXIS2", 40i64),
    ]
}

fn with(mut h: Vec<koa_sdk::types::Card>, key: &str, v: impl Into<Value>) -> Vec<koa_sdk::types::Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(2), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Exoplanets", 18));
    // 40x40: each row's value = its row number, plus a hot column band
    let data: Vec<f32> = (0..40 * 40).map(|i| (i / 40) as f32).collect();
    h.images.insert(0, (40, 40, data));
    h
}

fn run(h: Vec<koa_sdk::types::Card>) -> koa_sdk::types::Evaluation {
    evaluate::<Nirc2>(&context("NIRC2"), vec![primary(h, 32, &[40, 40])], &host())
}

fn v(e: &koa_sdk::types::Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

#[test]
fn prefix_and_unprocessed_cubes() {
    let id = identify::<Nirc2>(&context("NIRC2"), vec![primary(header(), 32, &[40, 40])], &host()).unwrap();
    assert_eq!((id.koaid.as_str(), id.prefix.as_str(), id.rtui), ("N2.20240315.30074.52", "N2", true));
    // more than one HDU and no LEV0TYPE → an unprocessed cube
    let hdus = vec![primary(header(), 32, &[40, 40]), extension(1, HduKind::Image, "", vec![], 32, &[40, 40])];
    let id = identify::<Nirc2>(&context("NIRC2"), hdus, &host()).unwrap();
    assert_eq!((id.koaid.as_str(), id.rtui), ("N2.20240315.30074.52_unp", false));
    // LEV0TYPE decides when present
    let id = identify::<Nirc2>(&context("NIRC2"), vec![primary(with(header(), "LEV0TYPE", "Unprocessed"), 32, &[40, 40])], &host()).unwrap();
    assert!(id.koaid.ends_with("_unp"));
    assert!(preview_plan::<Nirc2>(&context("NIRC2"), vec![primary(with(header(), "LEV0TYPE", "unprocessed"), 32, &[40, 40])]).is_empty());
    assert_eq!(preview_plan::<Nirc2>(&context("NIRC2"), vec![primary(header(), 32, &[40, 40])]).len(), 1);
    // another instrument's header has no prefix
    let err = identify::<Nirc2>(&context("NIRC2"), vec![primary(with(header(), "INSTRUME", "OSIRIS"), 32, &[4, 4])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "KOAID_CREATE_FAIL"));
    // INSTRUME missing: named from OUTDIR
    let mut h = header();
    h.retain(|c| c.key != "INSTRUME");
    let id = identify::<Nirc2>(&context("NIRC2"), vec![primary(h, 32, &[40, 40])], &host()).unwrap();
    assert_eq!(edited(&id.edits, "INSTRUME"), Some(&Value::Text("NIRC2".into())));
}

#[test]
fn koaimtyp_branches() {
    let t = |h: Vec<koa_sdk::types::Card>| v(&run(h), "KOAIMTYP").unwrap();
    let txt = |s: &str| Value::Text(s.into());
    for (imtype, want) in [
        ("arclamp", "arclamp"),
        ("bias", "bias"),
        ("calib", "calib"),
        ("calibration", "calib"),
        ("dark", "dark"),
        ("domeflat", "domeflat"),
        ("flatlamp", "flatlamp"),
        ("flatlampoff", "flatlampoff"),
        ("standard", "object"),
        ("Object", "object"),
    ] {
        assert_eq!(t(with(header(), "IMTYPE", imtype)), txt(want), "{imtype}");
    }
    let base = with(header(), "IMTYPE", "unknown");
    assert_eq!(t(with(base.clone(), "SHRNAME", "closed")), txt("dark"));
    let tel = with(base.clone(), "OBSFNAME", "telescope");
    let tracking = with(with(tel.clone(), "DOMESTAT", "tracking"), "AXESTAT", "in position");
    assert_eq!(t(tracking), txt("object"));
    let domeflat = with(with(with(tel.clone(), "EL", 45.0), "DOMEPOSN", 100.0), "AZ", 10.0);
    assert_eq!(t(with(domeflat.clone(), "FLIMAGIN", "on")), txt("flatlamp"));
    assert_eq!(t(with(tel.clone(), "FLSPECTR", "on")), txt("undefined"));
    assert_eq!(t(domeflat), txt("flatlampoff"));
    assert_eq!(t(tel), txt("undefined"));
    let sim = with(base.clone(), "OBSFNAME", "telsim");
    assert_eq!(t(with(sim.clone(), "NEONPWR", 1i64)), txt("arclamp"));
    assert_eq!(t(with(sim.clone(), "LAMPPWR", 1i64)), txt("flatlamp"));
    assert_eq!(t(sim), txt("undefined"));
    assert_eq!(t(base), txt("calib"), "missing OBSFNAME");
}

#[test]
fn keywords_of_an_imaging_frame() {
    let e = run(header());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "OFNAME"), Some(Value::Text("n0017.fits".into())), "FILENAME unchanged");
    assert_eq!(v(&e, "WAVERED"), Some(Value::Float(2.3)));
    assert_eq!(v(&e, "WAVEBLUE"), Some(Value::Float(1.95)));
    assert_eq!(v(&e, "DETMODE"), Some(Value::Text("image".into())));
    assert_eq!(v(&e, "DISPERS"), Some(Value::Text("unknown".into())));
    assert_eq!(v(&e, "DETGAIN"), Some(Value::Int(4)));
    assert_eq!(v(&e, "ELAPTIME"), Some(Value::Float(20.0)));
    assert_eq!(v(&e, "INSTSTAT"), Some(Value::Int(1)));
    assert_eq!(v(&e, "ISAO"), Some(Value::Text("yes".into())));
    // saturation = COADDS × 18000; linearity = COADDS × 5000
    assert_eq!(v(&e, "NPIXSAT"), Some(Value::Int(0)));
    assert_eq!(v(&e, "NONLIN"), Some(Value::Int(50000)));
    // WCS: narrow camera, position-angle mode, ROTPOSN 10.448 − zero 0.448 → θ = −10°
    assert_eq!(v(&e, "PIXSCALE"), Some(Value::Text("0.009952".into())));
    assert_eq!(v(&e, "CD1_1"), Some(Value::Text("-0.000002722446".into())));
    assert_eq!(v(&e, "CD2_2"), Some(Value::Text("0.000002722446".into())));
    assert_eq!(v(&e, "CD1_2"), Some(Value::Text("0.000000480041".into())));
    assert_eq!(v(&e, "CRPIX1"), Some(Value::Float(20.5)));
    assert_eq!(v(&e, "CRVAL1"), Some(Value::Float(33.43750000000001)), "02:13:45 as the reference sums it: (h + m/60 + s/3600)·15");
    assert_eq!(v(&e, "CRVAL2"), Some(Value::Float(-0.5)), "the sign of -00:30 is kept (defect #30)");
    assert_eq!(v(&e, "RADECSYS"), Some(Value::Text("FK5".into())));
    let names: Vec<_> = e.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 22);
    assert_eq!(&names[..3], ["set_telnr", "set_ut", "set_koaimtyp"]);
}

#[test]
fn wavelength_special_cases() {
    let e = run(with(with(header(), "MINWAVE", 0.0), "MAXWAVE", 5.0));
    assert_eq!(v(&e, "WAVEBLUE"), Some(Value::Float(0.9)));
    let e = run(with(with(with(header(), "MINWAVE", 0.0), "MAXWAVE", 0.0), "CENWAVE", 0.0));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Text("null".into())));
    let e = run(with(header(), "MINWAVE", 0.0));
    assert_eq!(v(&e, "WAVEBLUE"), Some(Value::Text("null".into())));
    assert_eq!(v(&e, "WAVERED"), Some(Value::Float(2.3)));
    let e = run(with(header(), "GRSNAME", "medres"));
    assert_eq!((v(&e, "DETMODE"), v(&e, "DISPERS")), (Some(Value::Text("spec".into())), Some(Value::Text("medium".into()))));
}

#[test]
fn sig2nois_uses_the_column_centre() {
    // reference defect #42: NAXIS2/2 was used as the column centre. Here the
    // image is 60 columns × 30 rows; only columns 20..40 carry a gradient.
    struct R;
    impl koa_sdk::host::Rows for R {
        fn shape(&self) -> (u32, u32) {
            (60, 30)
        }
        fn read_rows(&self, y0: u32, n: u32) -> Result<Vec<f32>, String> {
            Ok((y0..y0 + n).flat_map(|y| (0..60).map(move |x| if (20..40).contains(&x) { (y * y) as f32 } else { 0.0 })).collect())
        }
    }
    // rows 10..20: medians 100..361 → √261 → 16
    assert_eq!(sig2nois(&R).unwrap(), Some(16.0));
    let e = run(header());
    // 40×40 rows valued by row number: rows 10..29 → √19 → 4
    assert_eq!(v(&e, "SIG2NOIS"), Some(Value::Float(4.0)));
}

#[test]
fn missing_filename_goes_on_to_bad_ofname() {
    let mut h = header();
    h.retain(|c| c.key != "FILENAME");
    let e = run(h);
    assert!(!stopped(&e), "validation refuses the file BAD_OFNAME, not the step");
    assert!(e.steps.iter().any(|s| s.name == "set_ofName" && s.ok));
    assert!(e.diagnostics.iter().any(|d| d.code == "SET_OFNAME_ERROR" && d.severity == Severity::Warn));
    assert_eq!(edited(&e.edits, "OFNAME"), None);
}
