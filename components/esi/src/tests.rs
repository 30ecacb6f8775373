use koa_sdk::testing::{FixtureHost, card, context, edited, primary, program};
use koa_sdk::types::{Card, Evaluation, Value};
use koa_sdk::{Header, evaluate, identify, stopped};

use super::*;

fn header() -> Vec<Card> {
    vec![
        card("INSTRUME", "ESI"),
        card("DATE-OBS", "2024-03-15"),
        card("UT", "08:21:14.52"),
        card("UTC", "08:21:14.52"),
        card("OUTFILE", "e240315_"),
        card("FRAMENO", 17i64),
        card("PROGNAME", "U123"),
        card("OBSTYPE", "Object"),
        card("HATCHPOS", "open"),
        card("LAMPQTZ1", "off"),
        card("AXESTAT", "tracking"),
        card("DOMESTAT", "tracking"),
        card("IMFLTNAM", "out"),
        card("LDFLTNAM", "out"),
        card("PRISMNAM", "in"),
        card("SLMSKNAM", "0.75_arcsec"),
        card("DWFILNAM", "clear_s"),
        card("EL", 60.0),
    ]
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(2), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Quasar absorbers", 18));
    h.images.insert(0, (2, 2, vec![1.0, 2.0, 3.0, 65535.0]));
    h
}

fn run(h: Vec<Card>) -> Evaluation {
    evaluate::<Esi>(&context("ESI"), vec![primary(h, 16, &[2, 2])], &host())
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

fn typ(h: Vec<Card>) -> &'static str {
    koaimtyp(&Header::new(vec![primary(h, 16, &[2, 2])], Esi::KEYMAP))
}

#[test]
fn prefix_and_ofname() {
    let id = identify::<Esi>(&context("ESI"), vec![primary(header(), 16, &[2, 2])], &host()).unwrap();
    assert_eq!(id.koaid, "ES.20240315.30074.52");
    let e = run(header());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "OFNAME"), Some(Value::Text("e240315_0017.fits".into())));
    assert_eq!(v(&e, "CAMERA"), Some(Value::Text("ESI".into())));
}

#[test]
fn koaimtyp_branches() {
    assert_eq!(typ(with(header(), "OBSTYPE", "Bias")), "bias");
    assert_eq!(typ(with(header(), "OBSTYPE", "dark")), "dark");
    assert_eq!(typ(header()), "object");
    let closed = with(header(), "HATCHPOS", "closed");
    assert_eq!(typ(with(closed.clone(), "LAMPQTZ1", "on")), "flatlamp");
    assert_eq!(typ(with(closed.clone(), "LAMPCU1", "on")), "arclamp");
    assert_eq!(typ(closed.clone()), "undefined");
    // dome flat position, telescope not tracking → flat
    let g = with(with(with(header(), "EL", 45.0), "AXESTAT", "stopped"), "DOMESTAT", "stopped");
    assert_eq!(typ(g.clone()), "flatlamp");
    assert_eq!(typ(with(with(header(), "OBSTYPE", "dmflat"), "AXESTAT", "x")), "object");
    assert_eq!(typ(with(with(with(header(), "OBSTYPE", "dmflat"), "AXESTAT", "x"), "DOMESTAT", "x")), "flatlamp");
    assert_eq!(typ(with(header(), "LAMPQTZ1", "on")), "undefined");
    // hole masks
    let hole = with(closed.clone(), "SLMSKNAM", "MultiHoles");
    assert_eq!(typ(with(hole.clone(), "LAMPQTZ1", "on")), "trace");
    assert_eq!(typ(with(hole.clone(), "LAMPNE1", "on")), "focus");
    assert_eq!(typ(with(g.clone(), "SLMSKNAM", "multiholes")), "trace");
    assert_eq!(typ(with(with(with(g, "SLMSKNAM", "holes"), "PRISMNAM", "out"), "IMFLTNAM", "in")), "focus");
    assert_eq!(typ(with(with(header(), "SLMSKNAM", "holes"), "DWFILNAM", "clear_s")), "focus");
    assert_eq!(typ(with(with(header(), "SLMSKNAM", "holes"), "DWFILNAM", "B")), "undefined");
}

#[test]
fn modes_wavelengths_and_slits() {
    let e = run(header());
    assert_eq!(v(&e, "OBSMODE"), Some(Value::Text("high".into())));
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVECNTR"), v(&e, "WAVERED")), (Some(Value::Int(3900)), Some(Value::Int(7400)), Some(Value::Int(10900))));
    assert_eq!((v(&e, "SLITWIDT"), v(&e, "SLITLEN")), (Some(Value::Float(0.75)), Some(Value::Float(20.0))));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Float(5500.0)));
    assert_eq!(v(&e, "SPATSCAL"), Some(Value::Float(0.1542)));
    assert_eq!(v(&e, "NPIXSAT"), Some(Value::Int(1)));
    assert_eq!(v(&e, "FILTER"), Some(Value::Text("clear_s".into())));
    let img = with(with(with(header(), "IMFLTNAM", "in"), "PRISMNAM", "out"), "DWFILNAM", "R");
    let e = run(img);
    assert_eq!(v(&e, "OBSMODE"), Some(Value::Text("image".into())));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Int(6500)));
    assert_eq!(v(&e, "SLITWIDT"), Some(Value::Text("null".into())));
    assert_eq!(slit_dims("low", "IFU"), (Some(1.13), Some(4.0)));
    assert_eq!(slit_dims("low", "multiholes"), (Some(0.5), Some(480.0)));
    assert_eq!(slit_dims("low", "slit_1.0"), (Some(1.0), Some(480.0)));
    assert_eq!(slit_dims("low", "nothing"), (None, Some(480.0)));
    // no derivable mode: '' written, as the reference does, and a non-critical failure
    let e = run(with(header(), "PRISMNAM", "moving"));
    assert!(!e.steps.iter().find(|s| s.name == "get_obsmode").unwrap().ok);
    assert_eq!(v(&e, "OBSMODE"), Some(Value::Text("".into())));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Text("null".into())));
    // a header OBSMODE is kept untouched (no edit, even where the stages say otherwise)
    let e = run(with(header(), "OBSMODE", "low"));
    assert!(e.steps.iter().find(|s| s.name == "get_obsmode").unwrap().ok);
    assert_eq!(v(&e, "OBSMODE"), None);
    assert_eq!(v(&e, "SLITLEN"), Some(Value::Float(480.0)), "low: 8 arcminutes");
    assert_eq!(Esi::KEYSKIPS, ["PMFM", "RECNO", "CHECKSUM", "DATASUM"]);
}
