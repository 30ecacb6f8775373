use koa_sdk::testing::{FixtureHost, card, context, edited, primary, program};
use koa_sdk::types::{Severity, TwilightTimes, Value};
use koa_sdk::{evaluate, identify, stopped};

use super::*;

fn header(instr: &str, obstype: &str) -> Vec<koa_sdk::types::Card> {
    vec![
        card("INSTRUME", "NIRES"),
        card("INSTR", instr),
        card("DATE-OBS", "2019-06-15"),
        card("UTC", "03:29:31.36"),
        card("DATAFILE", "s190615_0020"),
        card("FRAMENUM", 20i64),
        card("ITIME", 100.0),
        card("COADDS", 1i64),
        card("OBSTYPE", obstype),
        card("PROGNAME", "C272"),
        card("OUTDIR", "/s/sdata1500/nires9/2019jun15/"),
        card("SATURATE", 33000i64),
    ]
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(2), ..Default::default() };
    h.programs.insert("2019A_C272".into(), program("de Kleer", "CIT", "Origin of the Irregular Satellites", 18));
    h.images.insert(0, (4, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 40000.0]));
    h
}

fn hdus(instr: &str, obstype: &str) -> Vec<koa_sdk::types::Hdu> {
    vec![primary(header(instr, obstype), -32, &[4, 2])]
}

#[test]
fn spectrograph_koaid_and_prefix() {
    let id = identify::<Nires>(&context("NIRES"), hdus("spec", "domeflat"), &host()).unwrap();
    assert_eq!(id.koaid, "NR.20190615.12571.36");
    assert_eq!(id.prefix, "NR");
    assert_eq!(id.utdate, "2019-06-15");
    assert_eq!(edited(&id.edits, "KOAID"), Some(&Value::Text("NR.20190615.12571.36.fits".into())));
}

#[test]
fn imager_prefix() {
    let id = identify::<Nires>(&context("NIRES"), hdus("imag", "object"), &host()).unwrap();
    assert_eq!(id.prefix, "NI");
    assert!(id.koaid.starts_with("NI.20190615."));
}

#[test]
fn unknown_mode_has_no_prefix() {
    let err = identify::<Nires>(&context("NIRES"), hdus("both", "object"), &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "KOAID_CREATE_FAIL"));
}

#[test]
fn foreign_instrument_is_rejected() {
    let mut h = header("spec", "object");
    h[0] = card("INSTRUME", "MOSFIRE");
    h.retain(|c| c.key != "OUTDIR");
    h.push(card("OUTDIR", "/s/sdata1300/mosfire5/"));
    let err = identify::<Nires>(&context("NIRES"), vec![primary(h, -32, &[4, 2])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "SET_INSTR_ERROR"));
}

#[test]
fn instrume_is_fixed_from_outdir() {
    let mut h = header("spec", "object");
    h[0] = card("INSTRUME", "");
    let id = identify::<Nires>(&context("NIRES"), vec![primary(h, -32, &[4, 2])], &host()).unwrap();
    assert_eq!(edited(&id.edits, "INSTRUME"), Some(&Value::Text("NIRES".into())));
}

#[test]
fn mira_outdir_cannot_be_reaccepted() {
    // reference defect #6: the FILNAME/OUTDIR/CURRINST checks re-accepted /mira files
    let mut h = header("spec", "object");
    h.retain(|c| c.key != "OUTDIR");
    h.push(card("OUTDIR", "/s/sdata1500/nires9/mira/"));
    h.push(card("CURRINST", "NIRES"));
    let err = identify::<Nires>(&context("NIRES"), vec![primary(h, -32, &[4, 2])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "SET_INSTR_ERROR"));
}

#[test]
fn koaimtyp_from_obstype() {
    for (obstype, want) in [
        ("object", "object"),
        ("standard", "object"),
        ("telluric", "object"),
        ("astro", "object"),
        ("star", "object"),
        ("bias", "bias"),
        ("dark", "dark"),
        ("domeflat", "domeflat"),
        ("domearc", "domearc"),
        ("calib", "undefined"),
        ("whatever", "undefined"),
    ] {
        assert_eq!(koaimtyp(obstype), want, "{obstype}");
    }
    let e = evaluate::<Nires>(&context("NIRES"), hdus("spec", "Calib"), &host());
    assert_eq!(edited(&e.edits, "KOAIMTYP"), Some(&Value::Text("undefined".into())));
    assert!(e.diagnostics.iter().any(|d| d.code == "KOAIMTYP_UDF" && d.severity == Severity::Warn));
}

#[test]
fn spectrograph_keywords() {
    let e = evaluate::<Nires>(&context("NIRES"), hdus("spec", "domeflat"), &host());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    let v = |k| edited(&e.edits, k).cloned();
    assert_eq!(v("WAVERED"), Some(Value::Int(24500)));
    assert_eq!(v("WAVECNTR"), Some(Value::Int(16950)));
    assert_eq!(v("WAVEBLUE"), Some(Value::Int(9400)));
    assert_eq!(v("SPECRES"), Some(Value::Float(2700.0)));
    assert_eq!(v("DISPSCAL"), Some(Value::Float(0.15)));
    assert_eq!(v("SPATSCAL"), Some(Value::Float(0.15)));
    assert_eq!(v("SLITLEN"), Some(Value::Float(18.1)));
    assert_eq!(v("SLITWIDT"), Some(Value::Float(0.5)));
    assert_eq!(v("FILTER"), None);
    assert_eq!(v("ELAPTIME"), Some(Value::Float(100.0)));
    assert_eq!(v("FRAMENO"), Some(Value::Int(20)));
    assert_eq!(v("OFNAME"), Some(Value::Text("s190615_0020.fits".into())));
    assert_eq!(v("UT"), Some(Value::Text("03:29:31.36".into())));
    assert_eq!(v("SEMESTER"), Some(Value::Text("2019A".into())));
    assert_eq!(v("PROGID"), Some(Value::Text("C272".into())));
    assert_eq!(v("PROGPI"), Some(Value::Text("deKleer".into())));
    assert_eq!(v("PROGINST"), Some(Value::Text("CIT".into())));
    assert_eq!(v("PROGTL1"), Some(Value::Text("Origin of the Irregular Satellites".into())));
    assert_eq!(v("NPIXSAT"), Some(Value::Int(1)));
    assert_eq!(v("IMAGEMD"), Some(Value::Float(4.5)));
    assert_eq!(v("DATLEVEL"), Some(Value::Int(0)));
    assert_eq!(v("OA"), Some(Value::Text("null".into())));
    assert_eq!(e.extra_meta.iter().find(|(k, _)| k == "PROPINT").map(|(_, v)| v), Some(&Value::Int(18)));
    let names: Vec<_> = e.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"set_telnr"));
    assert_eq!(names.last(), Some(&"set_dqa_vers"));
    assert_eq!(names.len(), 22);
}

#[test]
fn imager_keywords() {
    let e = evaluate::<Nires>(&context("NIRES"), hdus("imag", "object"), &host());
    let v = |k| edited(&e.edits, k).cloned();
    assert_eq!(v("WAVERED"), Some(Value::Int(22950)));
    assert_eq!(v("WAVECNTR"), Some(Value::Int(21225)));
    assert_eq!(v("WAVEBLUE"), Some(Value::Int(19500)));
    assert_eq!(v("FILTER"), Some(Value::Text("Kp".into())));
    assert_eq!(v("DISPSCAL"), Some(Value::Float(0.12)));
    assert_eq!(v("SPECRES"), None);
    assert_eq!(v("SLITLEN"), None);
}

#[test]
fn unknown_mode_scales_do_not_crash() {
    // reference defect #41: unbound value for INSTR neither imag nor spec
    let e = evaluate::<Nires>(&context("NIRES"), hdus("both", "object"), &host());
    assert!(!stopped(&e));
    assert!(edited(&e.edits, "DISPSCAL").is_none());
    let disp = e.steps.iter().find(|s| s.name == "set_dispscal").unwrap();
    assert!(!disp.ok && !disp.critical);
    assert!(!e.diagnostics.iter().any(|d| d.severity != Severity::Warn));
}

#[test]
fn missing_itime_stops_the_run() {
    let mut h = header("spec", "object");
    h.retain(|c| c.key != "ITIME");
    let e = evaluate::<Nires>(&context("NIRES"), vec![primary(h, -32, &[4, 2])], &host());
    assert!(stopped(&e));
    assert_eq!(e.steps.len(), 2, "the list stops at set_elaptime");
    let last = e.diagnostics.last().unwrap();
    assert_eq!((last.code.as_str(), last.severity), ("SET_ELAPTIME_ERROR", Severity::Error));
}

#[test]
fn daytime_calibration_gets_zero_propint_and_eng() {
    let mut h = host();
    h.twilight = Some(TwilightTimes { sunset: "05:10:00".into(), sunrise: "15:50:00".into() });
    let e = evaluate::<Nires>(&context("NIRES"), hdus("spec", "domeflat"), &h);
    assert_eq!(edited(&e.edits, "PROGID"), Some(&Value::Text("ENG".into())));
    assert_eq!(edited(&e.edits, "PROGPI"), Some(&Value::Text("nireseng".into())));
    assert_eq!(e.extra_meta.iter().find(|(k, _)| k == "PROPINT").map(|(_, v)| v), Some(&Value::Int(0)));
    // a night-time object frame keeps its program
    let e = evaluate::<Nires>(&context("NIRES"), hdus("spec", "object"), &h);
    assert_eq!(edited(&e.edits, "PROGID"), Some(&Value::Text("C272".into())));
}

// ---- shared (SDK) rules and reference defects, exercised through NIRES ----

fn evaluate_with(ctx: &koa_sdk::types::Context, cards: Vec<koa_sdk::types::Card>, h: &FixtureHost) -> koa_sdk::types::Evaluation {
    evaluate::<Nires>(ctx, vec![primary(cards, -32, &[4, 2])], h)
}

fn extra<'a>(e: &'a koa_sdk::types::Evaluation, key: &str) -> Option<&'a Value> {
    e.extra_meta.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn missing_date_and_time_come_from_the_file_mtime_in_utc() {
    // reference defect #5: the fallback was server local time + 10 h; the
    // context's mtime is UTC (2024-01-02T03:04:05) and is used as it is
    let mut h = header("spec", "object");
    h.retain(|c| c.key != "DATE-OBS" && c.key != "UTC");
    let id = identify::<Nires>(&context("NIRES"), vec![primary(h, -32, &[4, 2])], &host()).unwrap();
    assert_eq!(edited(&id.edits, "DATE-OBS"), Some(&Value::Text("2024-01-02".into())));
    assert_eq!(edited(&id.edits, "UTC"), Some(&Value::Text("03:04:05.00".into())));
    assert_eq!(id.koaid, "NR.20240102.11045.00");
}

#[test]
fn assign_progname_drives_semester_and_progid() {
    // reference defect #7: MISC.ASSIGN_PROGNAME set SEMESTER but not PROGID
    let mut ctx = context("NIRES");
    ctx.assign_progname = Some("2019A_U111,03:00:00.00,2019A_U222".into());
    let mut h = host();
    h.programs.insert("2019A_U222".into(), program("Smith", "UCLA", "Late half", 12));
    let mut cards = header("spec", "object");
    cards.retain(|c| c.key != "PROGNAME");
    let e = evaluate_with(&ctx, cards.clone(), &h);
    let v = |e: &koa_sdk::types::Evaluation, k| edited(&e.edits, k).cloned();
    // UTC 03:29:31 is after the 03:00 split: the second name
    assert_eq!(v(&e, "SEMESTER"), Some(Value::Text("2019A".into())));
    assert_eq!(v(&e, "PROGID"), Some(Value::Text("U222".into())));
    assert_eq!(v(&e, "PROGPI"), Some(Value::Text("Smith".into())));
    assert_eq!(extra(&e, "PROPINT"), Some(&Value::Int(12)));
    // before the split: the first name (unknown to the program service)
    ctx.assign_progname = Some("2019A_U111,04:00:00.00,2019A_U222".into());
    let e = evaluate_with(&ctx, cards, &h);
    assert_eq!(v(&e, "PROGID"), Some(Value::Text("U111".into())));
    assert!(e.diagnostics.iter().any(|d| d.code == "PROP_API_ERROR"), "{:?}", e.diagnostics);
}

#[test]
fn undefined_koaimtyp_is_not_a_calibration() {
    // reference defect #9: `undefined`/missing KOAIMTYP counted as a
    // calibration, so unknown daytime frames lost their program and period
    let mut h = host();
    h.twilight = Some(TwilightTimes { sunset: "05:10:00".into(), sunrise: "15:50:00".into() });
    let e = evaluate::<Nires>(&context("NIRES"), hdus("spec", "calib"), &h);
    assert_eq!(edited(&e.edits, "KOAIMTYP"), Some(&Value::Text("undefined".into())));
    assert_eq!(edited(&e.edits, "PROGID"), Some(&Value::Text("C272".into())));
    assert_eq!(extra(&e, "PROPINT"), Some(&Value::Int(18)));
}

#[test]
fn a_failing_twilight_service_is_a_warning_not_a_crash() {
    // reference defect #10: an API failure crashed set_prog_info (critical)
    let mut h = host();
    h.twilight_fails = Some("getTwilightData: HTTP 500".into());
    let e = evaluate::<Nires>(&context("NIRES"), hdus("spec", "domeflat"), &h);
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    let tw: Vec<_> = e.diagnostics.iter().filter(|d| d.code == "TWILIGHT_API_ERROR").collect();
    assert_eq!(tw.len(), 1, "warned once per file: {:?}", e.diagnostics);
    assert_eq!(tw[0].severity, Severity::Warn);
    // day or night unknown: the program and period are kept
    assert_eq!(edited(&e.edits, "PROGID"), Some(&Value::Text("C272".into())));
    assert_eq!(extra(&e, "PROPINT"), Some(&Value::Int(18)));
}

#[test]
fn a_bad_telescope_number_is_an_error() {
    // reference defect #12: the error branch itself crashed
    let mut h = host();
    h.telnr = Some(3);
    let e = evaluate::<Nires>(&context("NIRES"), hdus("spec", "object"), &h);
    assert!(stopped(&e));
    let d = e.diagnostics.last().unwrap();
    assert_eq!((d.code.as_str(), d.severity), ("TELNR_VALUE_ERROR", Severity::Error));
    assert_eq!(e.steps.len(), 1, "set_telnr is critical");
}

#[test]
fn an_unanswered_institution_is_none_with_a_warning() {
    // reference defect #21: `.replace` on a null institution crashed
    let mut h = host();
    let mut p = program("de Kleer", "CIT", "Origin of the Irregular Satellites", 18);
    p.institution = None;
    p.failures.push("institution: proposals/getAllocInst?ktn=2019A_C272: no AllocInst in the answer".into());
    h.programs.insert("2019A_C272".into(), p);
    let e = evaluate::<Nires>(&context("NIRES"), hdus("spec", "object"), &h);
    assert!(!stopped(&e));
    assert_eq!(edited(&e.edits, "PROGINST"), Some(&Value::Text("NONE".into())));
    assert_eq!(edited(&e.edits, "PROGPI"), Some(&Value::Text("deKleer".into())));
    assert!(e.diagnostics.iter().any(|d| d.code == "PROP_API_ERROR" && d.message.contains("getAllocInst")));
}

#[test]
fn infinite_values_are_written_as_null() {
    // reference defect #15: -infinity was not nulled (+infinity and NaN were)
    let mut hdr = koa_sdk::header::Header::new(hdus("spec", "object"), &[]);
    assert!(!hdr.set("A", f64::NEG_INFINITY, ""));
    assert!(!hdr.set("B", f64::INFINITY, ""));
    assert!(!hdr.set("C", f64::NAN, ""));
    assert!(!hdr.set("D", "-NaN", ""));
    assert!(hdr.set("E", -1.5, ""));
    for k in ["A", "B", "C", "D"] {
        assert_eq!(hdr.raw(k), Some(&Value::Text("null".into())), "{k}");
    }
    assert_eq!(hdr.raw("E"), Some(&Value::Float(-1.5)));
    assert_eq!(hdr.take_nulled(), vec!["A", "B", "C", "D"]);
}
