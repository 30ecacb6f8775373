use koa_sdk::testing::{FixtureHost, card, context, edited, extension, primary, program};
use koa_sdk::types::{Card, Evaluation, HduKind, Rotation, TwilightTimes, Value};
use koa_sdk::{Header, evaluate, identify, preview_plan, stopped};

use super::*;

fn header() -> Vec<Card> {
    let mut h = vec![
        card("INSTRUME", "HIRES: High Resolution Echelle Spectrometer"),
        card("DATE-OBS", "2024-03-15"),
        card("UTC", "08:21:14.52"),
        card("UTC-END", "08:31:14.52"),
        card("OUTFILE", "hires"),
        card("FRAMENO", 17i64),
        card("PROGNAME", "U123"),
        card("AUTOSHUT", 1i64),
        card("LAMPNAME", "none"),
        card("LMIRRIN", 0i64),
        card("DARKCLOS", 0i64),
        card("TTIME", 600.0),
        card("DECKNAME", "C2"),
        card("CATCUR1", 0.0),
        card("CATCUR2", 0.0),
        card("HATCLOS", 0i64),
        card("HATOPEN", 1i64),
        card("BINNING", "2, 1"),
        card("PRECOL", 12i64),
        card("POSTPIX", 80i64),
        card("CCDGAIN", "low"),
        card("XDISPERS", "RED"),
        card("XDANGL", 0.5),
        card("ECHANGL", 0.0),
        card("XDSIGMAI", 250.0),
        card("SLITWID", 0.6),
        card("IROT2ANG", 10.0),
        card("PARANG", 20.0),
        card("EL", 60.0),
    ];
    for k in ["CAFCAL", "COFCAL", "DECKCAL", "ECHCAL", "FIL1CAL", "FIL2CAL", "LFILCAL", "LSELCAL", "SLITCAL", "TVACAL", "TVFCAL", "TVF1CAL", "TVF2CAL", "XDCAL", "TEMPDET"] {
        h.push(card(k, 1i64));
    }
    for c in ["C1CV", "C2CV", "ECOV", "XCOV"] {
        h.push(card(&format!("{c}OPEN"), 1i64));
        h.push(card(&format!("{c}CLOS"), 0i64));
    }
    for (k, v) in [("BCCVOPEN", 1i64), ("BCCVCLOS", 0), ("RCCVOPEN", 1), ("RCCVCLOS", 0)] {
        h.push(card(k, v));
    }
    h
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn hdus(h: Vec<Card>) -> Vec<koa_sdk::types::Hdu> {
    let mut v = vec![primary(h, 16, &[])];
    for e in 1..=3u32 {
        v.push(extension(e, HduKind::Image, &format!("CCD{e}"), vec![card("AMPLOC", format!("{e} ")), card("NAXIS1", 100i64), card("NAXIS2", 60i64)], 16, &[100, 60]));
    }
    v
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(1), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Stars", 18));
    for e in 1..=3 {
        h.images.insert(e, (100, 60, (0..6000).map(|i| if i == 5 { 65535.0 } else { (i % 100) as f32 }).collect()));
    }
    h
}

fn run(h: Vec<Card>) -> Evaluation {
    evaluate::<Hires>(&context("HIRES"), hdus(h), &host())
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

fn typ(h: Vec<Card>) -> String {
    koaimtyp(&Header::new(vec![primary(h, 16, &[])], Hires::KEYMAP))
}

#[test]
fn prefix() {
    let id = identify::<Hires>(&context("HIRES"), hdus(header()), &host()).unwrap();
    assert_eq!(id.koaid, "HI.20240315.30074.52");
    assert!(identify::<Hires>(&context("HIRES"), hdus(with(header(), "INSTRUME", "ESI")), &host()).is_err());
}

#[test]
fn koaimtyp_branches() {
    assert_eq!(typ(header()), "object");
    assert_eq!(typ(with(header(), "TTIME", 0.0)), "bias");
    assert_eq!(typ(with(header(), "HATCLOS", 1i64)), "dark");
    let mut h = header();
    h.retain(|c| c.key != "DARKCLOS");
    assert_eq!(typ(h), "undefined");
    let shut = with(header(), "AUTOSHUT", 0i64);
    assert_eq!(typ(shut.clone()), "dark");
    assert_eq!(typ(with(shut.clone(), "TTIME", 0.0)), "bias");
    assert_eq!(typ(with(shut, "LAMPNAME", "ThAr1")), "dark_lamp_on");
    let mirror_in = with(header(), "LMIRRIN", 1i64);
    assert_eq!(typ(with(mirror_in.clone(), "LAMPNAME", "quartz1")), "flatlamp");
    assert_eq!(typ(with(with(mirror_in.clone(), "LAMPNAME", "quartz1"), "DECKNAME", "D5")), "trace");
    assert_eq!(typ(with(with(mirror_in.clone(), "LAMPNAME", "undefined"), "LAMPQTZ2", true)), "flatlamp");
    assert_eq!(typ(with(header(), "LAMPNAME", "quartz1")), "object_lamp_on");
    assert_eq!(typ(with(with(header(), "LAMPNAME", "quartz1"), "HATCLOS", 1i64)), "undefined");
    let thar = with(with(mirror_in.clone(), "LAMPNAME", "ThAr1"), "CATCUR1", 10.0);
    assert_eq!(typ(thar.clone()), "arclamp");
    assert_eq!(typ(with(thar.clone(), "DECKNAME", "D5")), "focus");
    assert_eq!(typ(with(thar.clone(), "LAMPNAME", "ThAr2")), "undefined", "ThAr2 reads CATCUR2");
    assert_eq!(typ(with(with(thar, "XCOVCLOS", 1i64), "ECOVCLOS", 1i64)), "undefined");
    assert_eq!(typ(with(mirror_in, "LAMPNAME", "undefined")), "undefined");
}

#[test]
fn koaimtyp_is_set_before_the_program_steps() {
    // defect #9: a daytime science frame was ENG with PROPINT 0
    let mut h = host();
    h.twilight = Some(TwilightTimes { sunset: "05:10:00".into(), sunrise: "15:50:00".into() });
    let day = with(header(), "UTC", "02:00:00.00");
    let e = evaluate::<Hires>(&context("HIRES"), hdus(day.clone()), &h);
    assert_eq!(v(&e, "PROGID"), Some(Value::Text("U123".into())));
    let e = evaluate::<Hires>(&context("HIRES"), hdus(with(day, "TTIME", 0.0)), &h);
    assert_eq!(v(&e, "PROGID"), Some(Value::Text("ENG".into())), "a daytime bias is engineering");
    assert_eq!(e.extra_meta.iter().find(|(k, _)| k == "PROPMIN").map(|(_, v)| v), Some(&Value::Int(0)));
}

#[test]
fn keywords() {
    let e = run(header());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "OFNAME"), Some(Value::Text("hires0017.fits".into())));
    assert_eq!(v(&e, "UT-END"), Some(Value::Text("08:31:14.52".into())));
    assert_eq!(v(&e, "BINNING"), Some(Value::Text("2,1".into())), "defect #34: spaces removed");
    assert_eq!(v(&e, "INSTSTAT"), Some(Value::Int(1)));
    assert_eq!(v(&e, "NPIXSAT"), Some(Value::Int(3)));
    assert_eq!(v(&e, "CCDGN01"), Some(Value::Float(1.20)));
    assert_eq!(v(&e, "CCDRN03"), Some(Value::Float(2.50)));
    assert_eq!(v(&e, "CCDGN04"), Some(Value::Text("null".into())));
    assert_eq!(v(&e, "SLITLEN"), Some(Value::Float(14.0)));
    assert_eq!(v(&e, "SLITWIDT"), Some(Value::Float(0.861)));
    assert_eq!(v(&e, "SPATSCAL"), Some(Value::Float(0.239)));
    assert_eq!(v(&e, "SKYPA"), Some(Value::Float(10.0)));
    assert_eq!(v(&e, "SUBEXP"), Some(Value::Text("False".into())));
    assert_eq!(v(&e, "ROQUAL"), Some(Value::Text("Good".into())));
    assert!(matches!(v(&e, "IM01MN01"), Some(Value::Float(_))));
    assert_eq!(v(&e, "IM01MN05"), Some(Value::Text("null".into())));
    for k in ["WAVECNTR", "WAVEBLUE", "WAVERED"] {
        assert!(matches!(v(&e, k), Some(Value::Int(w)) if (1000..=20000).contains(&w) && w % 10 == 0), "{k}: {:?}", v(&e, k));
    }
}

#[test]
fn instrument_status_fixes() {
    // defect #34: the XCOV cover was skipped; '0' compared as text
    assert_eq!(instrument_status(&Header::new(vec![primary(with(header(), "XCOVOPEN", 0i64), 16, &[])], &[])), 0);
    assert_eq!(instrument_status(&Header::new(vec![primary(with(header(), "ECHCAL", 0i64), 16, &[])], &[])), 0);
    let mut h = header();
    h.retain(|c| c.key != "TVACAL");
    assert_eq!(instrument_status(&Header::new(vec![primary(h, 16, &[])], &[])), -1);
}

#[test]
fn subexposures_and_wavelength_search_terminate() {
    // defect #34: the sub-exposure path raised
    let h = |c: Vec<Card>| Header::new(vec![primary(c, 16, &[])], &[]);
    assert!(!subexp(&h(header())));
    assert!(subexp(&h(with(header(), "PEXPTIME", 300.0))));
    assert!(!subexp(&h(with(with(with(header(), "PEXPTIME", 300.0), "ERAMODE", "B, G, R"), "MOSMODE", "B, G, R"))));
    // every angle ends (the reference could loop forever), UV too, unknown → None
    for xd in [-1.0, 0.0, 0.5, 1.2] {
        assert!(wavelengths("RED", xd, 0.1, 250.0).is_some());
        assert!(wavelengths("UV", xd, -0.1, 400.0).is_some());
    }
    assert!(wavelengths("GREEN", 0.0, 0.0, 250.0).is_none());
    let e = run(with(header(), "XDCAL", 0i64));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Text("null".into())));
}

#[test]
fn one_preview_per_ccd() {
    let p = preview_plan::<Hires>(&context("HIRES"), hdus(header()));
    let names: Vec<&str> = p.iter().map(|p| p.suffix.as_str()).collect();
    assert_eq!(names, ["_CCD1_HDU01", "_CCD2_HDU02", "_CCD3_HDU03"]);
    assert!(p.iter().all(|p| p.rotate == Rotation::Ccw90 && p.width == Some(30)));
}

#[test]
fn statistics_boxes_follow_the_rotated_frame() {
    // PRECOL 12, POSTPIX 32, binning 1: nx = min(32 − 32/3, 15) = 15 = ny.
    // On a 100 × 400 CCD the rotated frame's image box is x ∈ [32, 47),
    // y ∈ [192, 207) → rows [193, 208); the post-scan box x ∈ [75, 90),
    // y ∈ [int(12 − 7.5), int(12 + 7.5)) = [4, 19) → rows [381, 396).
    // Pixel value = 1000·row + column, so a box's mean names its rows and columns.
    let h = with(with(with(header(), "PRECOL", 12i64), "POSTPIX", 32i64), "BINNING", "1,1");
    let mut hd = vec![primary(h, 16, &[])];
    let mut fx = host();
    for e in 1..=3u32 {
        hd.push(extension(e, HduKind::Image, &format!("CCD{e}"), vec![card("NAXIS1", 100i64), card("NAXIS2", 400i64)], 16, &[100, 400]));
        fx.images.insert(e, (100, 400, (0..400u32).flat_map(|r| (0..100u32).map(move |c| (1000 * r + c) as f32)).collect()));
    }
    let e = evaluate::<Hires>(&context("HIRES"), hd, &fx);
    let mean = |k: &str| match v(&e, k) {
        Some(Value::Float(x)) => x,
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(mean("IM01MN01"), 200_039.0, "image box: rows 193..207, columns 32..46");
    assert_eq!(mean("PT01MN02"), 388_082.0, "post-scan box: rows 381..395, columns 75..89");
    assert_eq!(mean("IM01MD03"), 200_039.0);
}

#[test]
fn wavelengths_follow_the_reference_arithmetic() {
    // expected values from the reference's formula (instr_hires.set_wavelengths)
    assert_eq!(wavelengths("RED", 0.5, 0.0, 250.0), Some([Some(6480), Some(4450), Some(8910)]));
    assert_eq!(wavelengths("UV", 1.2, -0.1, 400.0), Some([Some(4570), Some(3180), Some(6040)]));
    assert_eq!(wavelengths("UV", 0.0, 0.25, 400.0), Some([Some(3610), Some(2100), Some(5100)]));
    // the blue end needs 99 upward order steps: the reference stops there
    // (a flat bound of 100 steps gives 1090)
    assert_eq!(wavelengths("RED", -1.8, 0.0, 160.0), Some([Some(5320), Some(1100), Some(7580)]));
    // a negative uncorrected blue end is searched like any other, as the reference does
    assert_eq!(wavelengths("RED", -3.93, 0.0, 52.6), Some([Some(2760), Some(6250), Some(6140)]));
    let e = run(header());
    assert_eq!((v(&e, "WAVECNTR"), v(&e, "WAVEBLUE"), v(&e, "WAVERED")), (Some(Value::Int(6480)), Some(Value::Int(4450)), Some(Value::Int(8910))));
    // a blank XDISPERS reads as '' in astropy (not usable) → RED, as in the reference
    assert_eq!(v(&run(with(header(), "XDISPERS", "   ")), "WAVECNTR"), Some(Value::Int(6480)));
}

#[test]
fn sig2nois_medians_are_numpys() {
    // middle CCD (HDU 2), rows 25..45 (r = int(1.17·60/2) = 35); each column
    // holds its index, so the medians run 10..89: trunc(√79) = 8
    assert_eq!(v(&run(header()), "SIG2NOIS"), Some(Value::Float(8.0)));
    // a NaN pixel in the band makes its column's median NaN, and NumPy's
    // max/min with it: null (not a median of the 19 others)
    let mut fx = host();
    let (_, _, data) = fx.images.get_mut(&2).unwrap();
    data[30 * 100 + 50] = f32::NAN;
    let e = evaluate::<Hires>(&context("HIRES"), hdus(header()), &fx);
    assert_eq!(v(&e, "SIG2NOIS"), Some(Value::Text("null".into())));
    // outside the band it does not matter
    let mut fx = host();
    fx.images.get_mut(&2).unwrap().2[3 * 100 + 50] = f32::NAN;
    assert_eq!(v(&evaluate::<Hires>(&context("HIRES"), hdus(header()), &fx), "SIG2NOIS"), Some(Value::Float(8.0)));
}
