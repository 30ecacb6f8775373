use koa_sdk::testing::{FixtureHost, card, context, edited, primary, program};
use koa_sdk::types::{Card, Context, Evaluation, ScheduleEntry, Value};
use koa_sdk::{evaluate, identify, preview_plan, stopped};

use super::*;

fn header() -> Vec<Card> {
    vec![
        card("INSTRUME", "K1ACAMA"),
        card("CAMNAME", "K1ACAMA"),
        card("TELESCOP", "Keck I"),
        card("CURRINST", "LRIS"),
        card("DATE-OBS", "2024-03-15"),
        card("UTC", "08:21:14.52"),
        card("TTIME", 2.5),
        card("FILTER0", "V"),
        card("FILTER1", ""),
    ]
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn ctx() -> Context {
    let mut c = context("GUIDER");
    c.ofname = "/s/sdata1202/k1acama/2024mar15/k1acama_0042.fits".into();
    c.filepath = c.ofname.clone();
    c
}

fn entry(code: &str, start: &str, end: &str, kind: &str) -> ScheduleEntry {
    ScheduleEntry { date: "2024-03-14".into(), telnr: 1, instrument: "LRIS".into(), proj_code: code.into(), start_time: start.into(), end_time: end.into(), obs_type: kind.into() }
}

fn host(schedule: Vec<ScheduleEntry>) -> FixtureHost {
    let mut h = FixtureHost { telnr: None, ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Guiding", 18));
    h.programs.insert("2024A_C111".into(), program("Jones", "CIT", "Other", 18));
    h.schedule = Some(schedule);
    h
}

fn run(h: Vec<Card>, schedule: Vec<ScheduleEntry>) -> Evaluation {
    evaluate::<Guider>(&ctx(), vec![primary(h, 16, &[])], &host(schedule))
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

#[test]
fn koaid_carries_the_camera_and_rtui_is_off() {
    let id = identify::<Guider>(&ctx(), vec![primary(header(), 16, &[])], &host(vec![])).unwrap();
    assert_eq!((id.koaid.as_str(), id.prefix.as_str(), id.rtui), ("GR.20240315.30074.52_K1ACAMA", "GR", false));
    let mut h = header();
    h.retain(|c| c.key != "CAMNAME");
    assert!(identify::<Guider>(&ctx(), vec![primary(h, 16, &[])], &host(vec![])).is_err());
    // INSTRUME from CURRINST; neither → error
    let mut h = header();
    h.retain(|c| c.key != "INSTRUME");
    let id = identify::<Guider>(&ctx(), vec![primary(h.clone(), 16, &[])], &host(vec![])).unwrap();
    assert_eq!(edited(&id.edits, "INSTRUME"), Some(&Value::Text("LRIS".into())));
    h.retain(|c| c.key != "CURRINST");
    let err = identify::<Guider>(&ctx(), vec![primary(h, 16, &[])], &host(vec![])).unwrap_err();
    assert!(err.iter().any(|d| d.code == "SET_INSTR_ERROR"));
}

#[test]
fn telescope_frame_type_and_names() {
    let sched = vec![entry("U123", "18:00", "06:00", "Classical")];
    let e = run(header(), sched.clone());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "KOAIMTYP"), Some(Value::Text("object".into())));
    assert_eq!(v(&e, "FRAMENO"), Some(Value::Int(42)));
    assert_eq!(v(&e, "OFNAME"), Some(Value::Text("k1acama_0042.fits".into())));
    assert_eq!(v(&e, "ELAPTIME"), Some(Value::Float(2.5)));
    assert_eq!(v(&e, "FILTER"), Some(Value::Text("V".into())));
    assert_eq!(v(&e, "TARGRADV"), Some(Value::Text("".into())));
    assert_eq!(v(&e, "PROGID"), Some(Value::Text("U123".into())), "from the LRIS schedule");
    // #38 kept on purpose: the TTIME rule, not the discarded get_koaimtyp
    // (CAMERA fpc → fpc, XPOSURE 0 → bias, else IMTYPE)
    assert_eq!(v(&run(with(header(), "TTIME", 0.0), sched.clone()), "KOAIMTYP"), Some(Value::Text("bias".into())));
    let kcwi_like = with(with(with(header(), "CAMERA", "fpc"), "XPOSURE", 0.0), "IMTYPE", "flatlamp");
    assert_eq!(v(&run(kcwi_like.clone(), sched.clone()), "KOAIMTYP"), Some(Value::Text("object".into())));
    assert_eq!(v(&run(with(kcwi_like, "TTIME", 0.0), sched.clone()), "KOAIMTYP"), Some(Value::Text("bias".into())));
    assert_eq!(v(&run(with(header(), "IMTYPE", "dark"), sched.clone()), "KOAIMTYP"), Some(Value::Text("object".into())));
    // defect #12: an unknown telescope is a clean error of the critical step
    let e = run(with(header(), "TELESCOP", "Subaru"), sched);
    assert!(stopped(&e));
    assert!(e.diagnostics.iter().any(|d| d.code == "TELNR_VALUE_ERROR"));
}

#[test]
fn wavelengths_from_camera_and_filters() {
    assert_eq!(wavelengths("K1ACAMA", "blank"), Some((0.380, 0.640, 0.700)));
    assert_eq!(wavelengths("K1ACAMA", "V"), Some((0.500, 0.600, 0.700)), "the filter overrides the camera");
    assert_eq!(wavelengths("NSCAM", "BG38+RG780"), Some((0.780, 0.890, 1.000)), "last filter wins");
    assert_eq!(wavelengths("unknown", "clear"), None);
}

#[test]
fn schedule_fallback_rules() {
    // the guided instrument decides; SSC/PCS have no program
    let two = vec![entry("U123", "18:00", "23:00", "Classical"), entry("C111", "23:00", "06:00", "Classical")];
    assert_eq!(v(&run(with(header(), "UTC", "10:30:00.00"), two.clone()), "PROGID"), Some(Value::Text("C111".into())));
    let e = run(with(header(), "CURRINST", "SSC"), two);
    assert_ne!(v(&e, "PROGID"), Some(Value::Text("U123".into())));
}

#[test]
fn sibling_jpeg_is_preferred() {
    let p = preview_plan::<Guider>(&ctx(), vec![primary(header(), 16, &[255, 255])]);
    assert_eq!(p.len(), 1);
    assert!(p[0].prefer_sibling);
}
