use koa_sdk::testing::{FixtureHost, card, context, edited, primary, program};
use koa_sdk::types::{Card, Evaluation, Scaling, Severity, Value};
use koa_sdk::{evaluate, identify, preview_plan, stopped};

use super::*;

fn header(camera: &str) -> Vec<Card> {
    vec![
        card("INSTRUME", "KCWI"),
        card("CAMERA", camera),
        card("DATE-OBS", "2024-03-15"),
        card("UT", "08:21:14.52"),
        card("UTC", "08:21:14.52"),
        card("OFNAME", "kb240315_00017.fits"),
        card("FRAMENO", 17i64),
        card("PROGNAME", "U123"),
        card("IMTYPE", "OBJECT"),
        card("XPOSURE", 300.0),
        card("IFUNAM", "Medium"),
        card("BGRATNAM", "BM"),
        card("BCWAVE", 4500.4),
        card("BNASNAM", "Open"),
        card("BINNING", "2,2"),
        card("RA", "02:13:45.00"),
        card("DEC", "-00:30:00.0"),
        card("EQUINOX", 2000.0),
        card("ROTMODE", "position angle"),
        card("ROTPOSN", 0.7),
        card("NAXIS1", 4i64),
        card("NAXIS2", 2i64),
    ]
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(2), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Cosmic web", 12));
    h.images.insert(0, (4, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 65535.0]));
    h
}

fn run(h: Vec<Card>) -> Evaluation {
    evaluate::<Kcwi>(&context("KCWI"), vec![primary(h, 16, &[4, 2])], &host())
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

#[test]
fn prefixes_by_camera() {
    for (cam, want) in [("BLUE", "KB"), ("red", "KR"), ("FPC", "KF"), ("svc", "KS")] {
        let id = identify::<Kcwi>(&context("KCWI"), vec![primary(header(cam), 16, &[4, 2])], &host()).unwrap();
        assert_eq!(id.prefix, want, "{cam}");
        assert_eq!(id.koaid, format!("{want}.20240315.30074.52"));
    }
    let err = identify::<Kcwi>(&context("KCWI"), vec![primary(header("green"), 16, &[4, 2])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "KOAID_CREATE_FAIL"));
}

#[test]
fn koaimtyp_branches() {
    let t = |h| koaimtyp(&koa_sdk::Header::new(vec![primary(h, 16, &[4, 2])], Kcwi::KEYMAP));
    assert_eq!(t(header("fpc")), "fpc");
    assert_eq!(t(header("svc")), "svc");
    assert_eq!(t(with(header("blue"), "XPOSURE", 0.0)), "bias");
    assert_eq!(t(header("blue")), "object");
    assert_eq!(t(with(header("blue"), "IMTYPE", "")), "undefined");
    let e = run(with(header("blue"), "IMTYPE", ""));
    assert!(e.diagnostics.iter().any(|d| d.code == "KOAIMTYP_UDF" && d.severity == Severity::Warn));
}

#[test]
fn blue_medium_slicer_keywords() {
    let e = run(header("blue"));
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    // BM: 850 Å around round(4500.4) = 4500
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Int(4500)));
    assert_eq!(v(&e, "WAVEBLUE"), Some(Value::Int(4075)));
    assert_eq!(v(&e, "WAVERED"), Some(Value::Int(4925)));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Int(4000)));
    assert_eq!(v(&e, "SLITWIDT"), Some(Value::Float(0.69)));
    assert_eq!(v(&e, "SLITLEN"), Some(Value::Float(20.4)));
    assert_eq!(v(&e, "DISPSCAL"), Some(Value::Float(0.294)));
    assert_eq!(v(&e, "SPATSCAL"), Some(Value::Float(0.294)));
    assert_eq!(v(&e, "ELAPTIME"), Some(Value::Float(300.0)));
    assert_eq!(v(&e, "NPIXSAT"), Some(Value::Int(1)));
    assert_eq!(v(&e, "TELESCOP"), Some(Value::Text("Keck II".into())));
    assert_eq!(v(&e, "CD1_1"), None, "no WCS for the blue camera");
    assert_eq!(e.steps.len(), 19);
}

#[test]
fn mask_widens_the_range_to_hundreds() {
    let e = run(with(header("blue"), "BNASNAM", "Mask"));
    // (4925 − 4075)/3 = 283 → 300
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVERED")), (Some(Value::Int(4200)), Some(Value::Int(4800))));
    // defect #36: CWAVE ≤ 0 with a mask no longer crashes
    let e = run(with(with(header("blue"), "BNASNAM", "Mask"), "BCWAVE", 0.0));
    assert!(e.steps.iter().find(|s| s.name == "set_slitdims").unwrap().ok);
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Text("null".into())));
    assert!(e.diagnostics.iter().any(|d| d.code == "SET_SLITDIMS_ERROR"));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Int(4000)), "grating and slicer known");
}

#[test]
fn specres_without_cwave_and_raw_pixel_scales() {
    // the reference sets SPECRES for a known grating and slicer whatever CWAVE is
    let e = run(with(header("blue"), "BCWAVE", 0.0));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Int(4000)));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Text("null".into())));
    // 0.147 × 3 printed as Python prints the product, not rounded to 6 decimals
    let e = run(with(header("blue"), "BINNING", "3,3"));
    for k in ["DISPSCAL", "SPATSCAL"] {
        match v(&e, k) {
            Some(Value::Float(x)) => assert_eq!(koa_sdk::pyfmt::py_repr(x), "0.44099999999999995", "{k}"),
            other => panic!("{k}: {other:?}"),
        }
    }
}

#[test]
fn red_side_and_fpc() {
    let h = with(with(with(header("red"), "RGRATNAM", "RH3"), "RCWAVE", 7000.0), "IFUNAM", "small");
    let e = run(h);
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVERED"), v(&e, "SPECRES")), (Some(Value::Int(6955)), Some(Value::Int(7045)), Some(Value::Int(800))));
    let e = run(with(header("FPC"), "BINNING", 1i64));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Int(6850)));
    assert_eq!(v(&e, "DISPSCAL"), Some(Value::Float(0.0075)));
}

#[test]
fn fpc_wcs_is_case_insensitive_and_keeps_the_dec_sign() {
    // defect #36: `FPC` in upper case got no WCS; `-00:30` lost its sign
    let e = run(with(header("FPC"), "BINNING", 1i64));
    assert_eq!(v(&e, "CD1_1"), Some(Value::Float(-2.0833333e-6)));
    assert_eq!(v(&e, "CD1_2"), Some(Value::Float(-0.0)));
    assert_eq!(v(&e, "CRVAL1"), Some(Value::Float(33.43750000000001)), "02:13:45 as the reference sums it: (h + m/60 + s/3600)·15");
    assert_eq!(v(&e, "CRVAL2"), Some(Value::Float(-0.5)));
    assert_eq!(v(&e, "CRPIX1"), Some(Value::Float(2.5)));
    assert_eq!(v(&e, "RADECSYS"), Some(Value::Text("FK5".into())));
    let bad = run(with(header("fpc"), "ROTMODE", "other"));
    assert!(bad.diagnostics.iter().any(|d| d.code == "SET_WCS_ERROR"));
}

#[test]
fn preview_is_histogram_equalised() {
    let p = preview_plan::<Kcwi>(&context("KCWI"), vec![primary(header("blue"), 16, &[4, 2])]);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].scaling, Scaling::HistogramEqualize);
    assert_eq!((p[0].quality, p[0].origin_lower, p[0].bin), (92, true, 1));
}

#[test]
fn drp_products_of_levels_1_and_2() {
    use koa_sdk::types::DrpListing;
    let k = "KB.20240315.12345.67";
    let d = "/data/kcwi/2024mar15";
    let mut files: Vec<String> = ["arc_00010_x.png", "bars_00019_y.png", "ql_00020_z.png", "sky_00020_a.png", "std_00019_b.png", "bias_x_c.png", "scat_00020_d.png"]
        .iter()
        .map(|p| format!("{d}/plots/{p}"))
        .collect();
    files.extend([format!("{d}/redux/{k}_icubed.fits"), format!("{d}/kcwi.proc"), format!("{d}/logs/kcwi.log"), format!("{d}/plots/deep/arc_00001_q.png")]);
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let mut listing: DrpListing = koa_sdk::testing::drp_listing(&refs);
    let cube = format!("{d}/redux/{k}_icubed.fits");
    listing.headers.push((cube.clone(), vec![card("FRAMENO", 20i64)]));
    listing.config_files.push("/conf/kcwi_koarti_lev2.cfg".into());
    let stage = format!("{d}/{k}.fits");
    let mut ctx = context("KCWI");
    ctx.level = 1;
    // the scan: the cube's header, the redux and plots folders (level 2: also the data and logs folders)
    let scan = Kcwi::drp_scan(&ctx, &stage, k);
    assert_eq!(scan.headers, [cube.clone(), format!("{d}/redux/{k}_icubes.fits")]);
    assert_eq!(scan.folders.len(), 2);
    let rels = |ctx: &Context, l: &DrpListing| {
        let mut r: Vec<String> = koa_sdk::drp_select::<Kcwi>(ctx, &stage, k, l).unwrap().into_iter().map(|p| p.rel).collect();
        r.sort();
        r
    };
    // level 1: the cube and the arc/bars/bias/ql plots of earlier frames
    assert_eq!(rels(&ctx, &listing), ["plots/arc_00010_x.png", "plots/bars_00019_y.png", format!("redux/{k}_icubed.fits").as_str()]);
    ctx.level = 2;
    assert_eq!(Kcwi::drp_scan(&ctx, &stage, k).folders.len(), 4);
    assert_eq!(
        rels(&ctx, &listing),
        [
            "kcwi.proc",
            "kcwi_koarti_lev2.cfg",
            "logs/kcwi.log",
            "plots/arc_00010_x.png",
            "plots/bars_00019_y.png",
            "plots/scat_00020_d.png",
            "plots/sky_00020_a.png",
            format!("redux/{k}_icubed.fits").as_str(),
        ]
    );
    // no cube, or a cube without FRAMENO: no products (FILE_NOT_FOUND)
    assert!(koa_sdk::drp_select::<Kcwi>(&ctx, &stage, "KB.20240315.99999.99", &listing).is_err());
    listing.headers.clear();
    assert!(koa_sdk::drp_select::<Kcwi>(&ctx, &stage, k, &listing).is_err());
}
