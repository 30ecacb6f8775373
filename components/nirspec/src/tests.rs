use koa_sdk::testing::{FixtureHost, card, context, edited, primary, program};
use koa_sdk::types::{Card, Evaluation, Value};
use koa_sdk::{Header, evaluate, identify, stopped};

use super::*;

fn header(camera: &str) -> Vec<Card> {
    vec![
        card("INSTRUME", "NIRSPEC"),
        card("CAMERA", camera),
        card("DATE-OBS", "2024-03-15"),
        card("UTC", "08:21:14.52"),
        card("DATAFILE", "nspec240315_0017"),
        card("FRAMENUM", 17i64),
        card("PROGNAME", "U123"),
        card("TRUITIME", 10.0),
        card("COADDS", 2i64),
        card("ITIME", 10.0),
        card("OBSTYPE", "object"),
        card("SLITNAME", "0.432x12"),
        card("PSCALE", 0.1),
        card("FILTER", "NIRSPEC-5"),
    ]
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(2), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Brown dwarfs", 18));
    h.images.insert(0, (2, 2, vec![1.0, 2.0, 3.0, 60000.0]));
    h
}

fn run(h: Vec<Card>) -> Evaluation {
    evaluate::<Nirspec>(&context("NIRSPEC"), vec![primary(h, -32, &[2, 2])], &host())
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

fn typ(h: Vec<Card>) -> &'static str {
    koaimtyp(&Header::new(vec![primary(h, -32, &[2, 2])], Nirspec::KEYMAP))
}

#[test]
fn prefixes() {
    for (cam, want) in [("SPEC", "NS"), ("scam", "NC")] {
        let id = identify::<Nirspec>(&context("NIRSPEC"), vec![primary(header(cam), -32, &[2, 2])], &host()).unwrap();
        assert_eq!(id.koaid, format!("{want}.20240315.30074.52"));
    }
    // NIRSPAO is NIRSPEC; CAMERA missing → OUTDIR decides
    let mut h = with(header("spec"), "INSTRUME", "NIRSPAO");
    h.retain(|c| c.key != "CAMERA");
    h.push(card("OUTDIR", "/s/sdata600/nscam3/2024mar15/"));
    let id = identify::<Nirspec>(&context("NIRSPEC"), vec![primary(h, -32, &[2, 2])], &host()).unwrap();
    assert_eq!(id.prefix, "NC");
    let err = identify::<Nirspec>(&context("NIRSPEC"), vec![primary(header("other"), -32, &[2, 2])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "KOAID_CREATE_FAIL"));
    let mut h = header("spec");
    h.retain(|c| c.key != "INSTRUME");
    assert!(identify::<Nirspec>(&context("NIRSPEC"), vec![primary(h, -32, &[2, 2])], &host()).is_err());
}

#[test]
fn koaimtyp_branches() {
    for (o, want) in [("Object", "object"), ("standard", "object"), ("telluric", "object"), ("bias", "bias"), ("dark", "dark"), ("domeflat", "domeflat"), ("domearc", "domearc"), ("arclamp", "arclamp"), ("flatlamp", "flatlamp")] {
        assert_eq!(typ(with(header("spec"), "OBSTYPE", o)), want, "{o}");
    }
    let cal = with(header("spec"), "OBSTYPE", "?");
    let inout = with(with(cal.clone(), "CALMPOS", "In"), "CALPPOS", "Out");
    assert_eq!(typ(with(inout.clone(), "NEON", "on")), "arclamp");
    assert_eq!(typ(with(with(cal.clone(), "NEON", "on"), "CALMPOS", "out")), "undefined");
    assert_eq!(typ(inout.clone()), "flatlampoff");
    assert_eq!(typ(with(inout, "FLIMAGIN", "on")), "flatlamp");
    assert_eq!(typ(with(cal.clone(), "ITIME", 0.4)), "bias");
    assert_eq!(typ(with(with(cal.clone(), "CALMPOS", "out"), "CALPPOS", "out")), "object");
    assert_eq!(typ(cal), "undefined");
}

#[test]
fn spec_keywords() {
    let e = run(header("spec"));
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "ISAO"), Some(Value::Text("no".into())));
    assert_eq!(v(&e, "DISPERS"), Some(Value::Text("high".into())));
    assert_eq!(v(&e, "DISPSCAL"), Some(Value::Float(0.096)));
    assert_eq!(v(&e, "SPATSCAL"), Some(Value::Float(0.1)));
    // 0.432x12: length 12, width 0.432; high: ceil(10800/0.432/100)·100
    assert_eq!((v(&e, "SLITLEN"), v(&e, "SLITWIDT")), (Some(Value::Float(12.0)), Some(Value::Float(0.432))));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Int(25000)));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Float(1.6195)));
    assert_eq!(v(&e, "DETRN"), Some(Value::Float(10.8)));
    assert_eq!(v(&e, "NPIXSAT"), Some(Value::Int(1)), "COADDS × 25000");
    assert_eq!(v(&e, "ELAPTIME"), Some(Value::Float(20.0)));
    let e = run(header("scam"));
    assert_eq!(v(&e, "DISPERS"), Some(Value::Text("null".into())));
    assert_eq!(v(&e, "SLITLEN"), Some(Value::Text("null".into())));
    assert_eq!(v(&e, "DETRN"), Some(Value::Text("null".into())));
}

#[test]
fn slit_values_compare_numbers() {
    // defect #39: as text "2.26" > "12" (swapped into length 2.26, width 12)
    // and "12" < "2.26" (left as length 2.26); as numbers 12 is the length
    assert_eq!(slit_values("12x2.26", "high", false), (Some(12.0), Some(2.26), Some(4800)));
    assert_eq!(slit_values("2.26x12", "high", false), (Some(12.0), Some(2.26), Some(4800)));
    assert_eq!(slit_values("0.76x42", "low", false), (Some(42.0), Some(0.76), Some(1800)));
    // AO: the mapped width gives SPECRES only; SLITWIDT is the SLITNAME width
    // (low resolution: the reference crashed after mapping)
    assert_eq!(slit_values("0.036x2.26", "low", true), (Some(2.26), Some(0.036), Some(2500)));
    assert_eq!(slit_values("0.0136x2.26", "high", true), (Some(2.26), Some(0.0136), Some(75000)));
    assert_eq!(slit_values("none", "high", false), (None, None, None));
    let e = run(with(with(header("spec"), "INSTRUME", "NIRSPAO"), "SLITNAME", "0.036x42"));
    assert_eq!(v(&e, "DISPSCAL"), Some(Value::Float(0.012)));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Int(2500)));
    assert_eq!(v(&e, "SLITWIDT"), Some(Value::Float(0.036)));
    assert_eq!(v(&e, "ISAO"), Some(Value::Text("yes".into())));
}

#[test]
fn filters_and_wavelengths() {
    // defect #39: mixed-case keys were unreachable after upper-casing
    assert_eq!(wavelengths("Br-Gamma"), Some((2.1550, 2.1650, 2.1750)));
    assert_eq!(wavelengths("Yband-new"), Some((0.95, 1.035, 1.12)));
    assert_eq!(wavelengths("K-prime"), Some((1.9500, 2.1225, 2.2950)));
    assert_eq!(wavelengths("blank"), None);
    let h = with(with(with(header("spec"), "FILTER", ""), "SCIFILT1", "thin"), "SCIFILT2", "NIRSPEC-7");
    let e = run(h);
    assert_eq!(v(&e, "FILTER"), Some(Value::Text("NIRSPEC-7".into())));
    assert_eq!(v(&e, "WAVERED"), Some(Value::Float(2.63)));
}
