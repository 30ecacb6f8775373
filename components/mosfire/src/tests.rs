use koa_sdk::testing::{FixtureHost, card, context, edited, extension, primary, program};
use koa_sdk::types::{Card, Evaluation, HduKind, TwilightTimes, Value};
use koa_sdk::{evaluate, identify, stopped};

use super::*;

fn header() -> Vec<Card> {
    vec![
        card("INSTRUME", "MOSFIRE"),
        card("DATE-OBS", "2024-03-15"),
        card("UTC", "08:21:14.52"),
        card("DATAFILE", "m240315_0017"),
        card("FRAMENUM", 17i64),
        card("PROGNAME", "U123"),
        card("TRUITIME", 11.0),
        card("COADDS", 2i64),
        card("FILTER", "K"),
        card("OBSMODE", "K-spectroscopy"),
        card("MDCMECH", "Dust Cover"),
        card("MDCSTAT", "OK"),
        card("MDCNAME", "Open"),
        card("SATURATE", 30000i64),
    ]
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn host(mean: f32) -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(1), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Galaxies", 18));
    h.images.insert(0, (2, 2, vec![mean; 4]));
    h
}

fn run_with(h: Vec<Card>, mean: f32) -> Evaluation {
    evaluate::<Mosfire>(&context("MOSFIRE"), vec![primary(h, -32, &[2, 2])], &host(mean))
}

fn typ(h: Vec<Card>, mean: f32) -> Value {
    edited(&run_with(h, mean).edits, "KOAIMTYP").cloned().unwrap()
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn prefix() {
    let id = identify::<Mosfire>(&context("MOSFIRE"), vec![primary(header(), -32, &[2, 2])], &host(1.0)).unwrap();
    assert_eq!(id.koaid, "MF.20240315.30074.52");
    let err = identify::<Mosfire>(&context("MOSFIRE"), vec![primary(with(header(), "INSTRUME", "NIRES"), -32, &[2, 2])], &host(1.0)).unwrap_err();
    assert!(!err.is_empty());
}

#[test]
fn koaimtyp_branches() {
    assert_eq!(typ(header(), 1.0), t("object"));
    assert_eq!(typ(with(header(), "FLATSPEC", 1i64), 1.0), t("flatlamp"));
    let dome = with(with(with(header(), "EL", 67.0), "DOMEPOSN", 90.0), "AZ", 2.0);
    assert_eq!(typ(dome.clone(), 1.0), t("flatlampoff"));
    assert_eq!(typ(with(header(), "OBSMODE", "dark-imaging"), 1.0), t("dark"));
    let closed = with(header(), "MDCNAME", "Closed");
    assert_eq!(typ(with(closed.clone(), "PWSTATA7", 1i64), 1.0), t("arclamp"));
    assert_eq!(typ(closed.clone(), 1.0), t("undefined"));
    // undefined at the dome-flat position: the data decide
    let closed_dome = with(with(with(closed, "EL", 67.0), "DOMEPOSN", 90.0), "AZ", 2.0);
    assert_eq!(typ(closed_dome.clone(), 800.0), t("flatlamp"));
    assert_eq!(typ(closed_dome, 100.0), t("flatlampoff"));
    let e = run_with(with(header(), "MDCSTAT", "MOVING"), 1.0);
    assert!(e.diagnostics.iter().any(|d| d.code == "KOAIMTYP_UDF"));
}

#[test]
fn koaimtyp_is_known_before_the_program_steps() {
    // defect #9: with KOAIMTYP set after set_propint, a daytime object frame
    // counted as a calibration and became ENG with PROPINT 0
    let names: Vec<String> = Mosfire::steps().iter().map(|s| s.name.to_string()).collect();
    let pos = |n: &str| names.iter().position(|s| s == n).unwrap();
    assert!(pos("set_koaimtyp") < pos("set_prog_info") && pos("set_koaimtyp") < pos("set_propint"));
    let mut h = host(1.0);
    h.twilight = Some(TwilightTimes { sunset: "05:10:00".into(), sunrise: "15:50:00".into() });
    let mut hdr = header();
    hdr = with(hdr, "UTC", "03:00:00.00");
    let e = evaluate::<Mosfire>(&context("MOSFIRE"), vec![primary(hdr.clone(), -32, &[2, 2])], &h);
    assert_eq!(edited(&e.edits, "PROGID"), Some(&t("U123")), "a daytime object frame keeps its program");
    let e = evaluate::<Mosfire>(&context("MOSFIRE"), vec![primary(with(hdr, "OBSMODE", "dark"), -32, &[2, 2])], &h);
    assert_eq!(edited(&e.edits, "PROGID"), Some(&t("ENG")), "a daytime dark is engineering");
}

#[test]
fn keywords() {
    let e = run_with(header(), 1.0);
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    let v = |k| edited(&e.edits, k).cloned();
    assert_eq!(v("WAVECNTR"), Some(Value::Float(2.162)));
    assert_eq!(v("WAVEBLUE"), Some(Value::Float(1.92)));
    assert_eq!(v("WAVERED"), Some(Value::Float(2.403)));
    assert_eq!(v("ELAPTIME"), Some(Value::Float(22.0)));
    assert_eq!(v("OFNAME"), Some(t("m240315_0017.fits")));
    assert_eq!(v("NPIXSAT"), Some(Value::Int(0)));
    let e = run_with(with(header(), "FILTER", "Dark"), 1.0);
    assert_eq!(edited(&e.edits, "WAVECNTR"), Some(&t("null")));
    assert_eq!(Mosfire::KEYSKIPS, [r"B\d+STAT", r"B\d+POS"]);
}

#[test]
fn slit_tables_mean_target_information() {
    let (ctx, fx) = (context("MOSFIRE"), host(1.0));
    let hdus = vec![primary(header(), -32, &[2, 2]), extension(1, HduKind::BinaryTable, "MECHANICAL_SLIT_CONFIGURATION", vec![], 8, &[10, 5])];
    let mut j = koa_sdk::Job::new(&ctx, hdus, Mosfire::KEYMAP, &fx, Mosfire::hooks());
    assert!(Mosfire::has_target_info(&mut j));
    let mut j = koa_sdk::Job::new(&ctx, vec![primary(header(), -32, &[2, 2])], Mosfire::KEYMAP, &fx, Mosfire::hooks());
    assert!(!Mosfire::has_target_info(&mut j));
}
