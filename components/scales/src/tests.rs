use koa_sdk::testing::{FixtureHost, card, compute_stats, context, edited, primary, program};
use koa_sdk::types::{Card, Diagnostic, Edit, Evaluation, Identity, PlanePick, Region, Rotation, Scaling, Severity, TwilightTimes, Value};
use koa_sdk::{evaluate, identify, preview_plan_checked, stopped};

use super::*;

/// A 4×2 read cube of three reads.
const CUBE: [u64; 3] = [4, 2, 3];
/// A 4×2 ramp-fitted image.
const FLAT: [u64; 2] = [4, 2];

/// An IFS up-the-ramp frame (values after the keyword table's examples).
fn header(camera: &str) -> Vec<Card> {
    vec![
        card("INSTRUME", "scales"),
        card("CAMERA", camera),
        card("DATE-OBS", "2026-06-06"),
        card("UT", "04:41:52.20"),
        card("OFNAME", "ss260605_05342.fits"),
        card("OUTDIR", "/data20/CD5/IFS"),
        card("PROGNAM", "U123"),
        card("IMTYPE", "object"),
        card("FILTER", "K"),
        card("MODSLNAM", "MedRes"),
        card("EXPTIME", 30.0),
    ]
}

/// A ramp-fitted imager frame: the spec's example KOAID SI.20260605.62983.38_qramp.
fn qramp_header() -> Vec<Card> {
    with(with(with(header("Im"), "DATE-OBS", "2026-06-05"), "UT", "17:29:43.38"), "FILTER", "Kp")
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn without(mut h: Vec<Card>, key: &str) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h
}

/// Read 0 = 100 + i, read 1 = 500, read 2 = 100 + 11·i: the CDS image is 10·i
/// (mean 35), the whole cube's mean is 247.33, the first read's 103.5.
fn cube_pixels() -> Vec<f32> {
    let mut v: Vec<f32> = (0..8).map(|i| 100.0 + i as f32).collect();
    v.extend([500.0; 8]);
    v.extend((0..8).map(|i| 100.0 + 11.0 * i as f32));
    v
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(2), ..Default::default() };
    h.programs.insert("2026A_U123".into(), program("Smith", "UCLA", "Young giant planets", 18));
    h
}

fn host_with(pixels: Vec<f32>) -> FixtureHost {
    let mut h = host();
    h.images.insert(0, (4, 2, pixels));
    h
}

fn cube_host() -> FixtureHost {
    host_with(cube_pixels())
}

fn flat_host() -> FixtureHost {
    host_with((1..=8).map(|i| i as f32).collect())
}

fn ident(cards: Vec<Card>, shape: &[u64]) -> Result<Identity, Vec<Diagnostic>> {
    identify::<Scales>(&context("SCALES"), vec![primary(cards, 16, shape)], &host())
}

fn run_on(cards: Vec<Card>, shape: &[u64], h: &FixtureHost) -> Evaluation {
    evaluate::<Scales>(&context("SCALES"), vec![primary(cards, 16, shape)], h)
}

fn run(cards: Vec<Card>) -> Evaluation {
    run_on(cards, &CUBE, &cube_host())
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

fn comment(edits: &[Edit], key: &str) -> Option<String> {
    edits.iter().rev().find_map(|e| match e {
        Edit::Set(s) if s.key == key && s.hdu == 0 => Some(s.comment.clone()),
        _ => None,
    })
}

fn extra<'a>(e: &'a Evaluation, key: &str) -> Option<&'a Value> {
    e.extra_meta.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn txt(s: &str) -> Option<Value> {
    Some(Value::Text(s.into()))
}

fn plan(cards: Vec<Card>, shape: &[u64]) -> Result<Vec<Preview>, String> {
    preview_plan_checked::<Scales>(&context("SCALES"), vec![primary(cards, 16, shape)])
}

// ------------------------------------------------------------------ KOAID

#[test]
fn prefixes_by_camera() {
    for (cam, want) in [("ifs", "SS"), ("IFS", "SS"), ("im", "SI"), ("Im", "SI"), ("IM", "SI"), ("dichroic", "SD"), ("Dichroic", "SD")] {
        let id = ident(header(cam), &CUBE).unwrap();
        assert_eq!(id.prefix, want, "{cam}");
        assert_eq!(id.koaid, format!("{want}.20260606.16912.20"), "{cam}");
        assert_eq!(id.utdate, "2026-06-06");
    }
    for cam in ["IMAGER", " IFS", "spec", "i", ""] {
        assert_eq!(prefix_of(cam), None, "{cam:?}");
        let err = ident(header(cam), &CUBE).unwrap_err();
        assert!(err.iter().any(|d| d.code == "KOAID_CREATE_FAIL"), "{cam:?}: {err:?}");
    }
    let err = ident(without(header("IFS"), "CAMERA"), &CUBE).unwrap_err();
    assert!(err.iter().any(|d| d.code == "KOAID_CREATE_FAIL"), "no CAMERA: {err:?}");
}

#[test]
fn instrume_is_compared_case_insensitively() {
    // S8: the table's example `scales` failed the case-sensitive test
    let id = ident(header("IFS"), &CUBE).unwrap();
    assert_eq!(edited(&id.edits, "INSTRUME"), Some(&Value::Text("SCALES".into())));
    assert_eq!(comment(&id.edits, "INSTRUME").as_deref(), Some("KOA: Instrument"));
    let id = ident(with(header("IFS"), "INSTRUME", "Scales"), &CUBE).unwrap();
    assert_eq!(id.prefix, "SS");
    let id = ident(with(header("IFS"), "INSTRUME", "SCALES"), &CUBE).unwrap();
    assert_eq!(edited(&id.edits, "INSTRUME"), None, "already right: not rewritten");
    // another instrument, or none: the example OUTDIR does not name SCALES
    for h in [with(header("IFS"), "INSTRUME", "KCWI"), without(header("IFS"), "INSTRUME")] {
        let err = ident(h, &CUBE).unwrap_err();
        assert!(err.iter().any(|d| d.code == "SET_INSTR_ERROR"), "{err:?}");
    }
}

#[test]
fn a_2d_primary_gets_the_qramp_suffix() {
    let id = ident(qramp_header(), &FLAT).unwrap();
    assert_eq!((id.koaid.as_str(), id.prefix.as_str()), ("SI.20260605.62983.38_qramp", "SI"));
    assert_eq!(edited(&id.edits, "KOAID"), Some(&Value::Text("SI.20260605.62983.38_qramp.fits".into())));
    assert_eq!(comment(&id.edits, "KOAID").as_deref(), Some("KOA: Data file name"));
    assert_eq!("SI.20260605.62983.38_qramp.fits".len(), 31, "fits the 32-wide KOAID column");
    assert!(is_qramp(&Header::new(vec![primary(qramp_header(), -32, &FLAT)], Scales::KEYMAP)));
}

#[test]
fn other_ranks_keep_the_plain_koaid() {
    let id = ident(header("IFS"), &CUBE).unwrap();
    assert_eq!(id.koaid, "SS.20260606.16912.20");
    assert_eq!(edited(&id.edits, "KOAID"), Some(&Value::Text("SS.20260606.16912.20.fits".into())));
    for shape in [&[8u64][..], &[4, 2, 3, 2][..]] {
        assert_eq!(ident(qramp_header(), shape).unwrap().koaid, "SI.20260605.62983.38", "{shape:?}");
    }
}

#[test]
fn a_koaid_in_the_header_is_kept_without_suffix() {
    let id = ident(with(qramp_header(), "KOAID", "SI.20260605.62983.38.fits"), &FLAT).unwrap();
    assert_eq!(id.koaid, "SI.20260605.62983.38");
    assert_eq!(edited(&id.edits, "KOAID"), None);
    // a re-fed lev-0 _qramp file is not suffixed twice
    let id = ident(with(qramp_header(), "KOAID", "SI.20260605.62983.38_qramp.fits"), &FLAT).unwrap();
    assert_eq!(id.koaid, "SI.20260605.62983.38_qramp");
    assert_eq!(edited(&id.edits, "KOAID"), None);
}

#[test]
fn a_primary_without_data_gets_no_suffix_and_no_crash() {
    // S6: the reference read the shape of a missing data array
    for shape in [&[][..], &[4u64, 0][..]] {
        let id = ident(qramp_header(), shape).unwrap();
        assert_eq!(id.koaid, "SI.20260605.62983.38", "{shape:?}");
    }
    let e = run_on(qramp_header(), &[], &host());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert!(e.steps.iter().find(|s| s.name == "set_image_stats").unwrap().ok);
    assert_eq!(v(&e, "IMAGEMN"), None);
    assert!(plan(qramp_header(), &[]).unwrap().is_empty(), "no data: no preview, no error");
}

// ------------------------------------------------------------------ DQA

#[test]
fn step_list_order_and_criticality() {
    let want = [
        ("set_telnr", true),
        ("set_ut", true),
        ("set_semester", true),
        ("set_ofName", true),
        ("set_koaimtyp", true),
        ("set_prog_info", true),
        ("set_propint", true),
        ("set_elaptime", false),
        ("set_datlevel", false),
        ("set_wavelengths", false),
        ("set_resolution", false),
        ("set_pixelscale", false),
        ("set_image_stats", false),
        ("set_weather", false),
        ("set_oa", false),
        ("set_dqa_vers", false),
        ("set_dqa_date", false),
    ];
    let got: Vec<(&str, bool)> = Scales::steps().iter().map(|s| (s.name, s.critical)).collect();
    assert_eq!(got, want);
    let e = run(header("IFS"));
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert!(e.steps.iter().all(|s| s.ok), "{:?}", e.steps);
    assert_eq!(e.steps.len(), 17);
}

#[test]
fn ifs_cube_keywords() {
    let e = run(header("IFS"));
    assert_eq!(v(&e, "UT"), None, "UT usable: set_ut writes nothing");
    assert_eq!(v(&e, "SEMESTER"), txt("2026A"));
    assert_eq!(comment(&e.edits, "SEMESTER").as_deref(), Some("Calculated SEMESTER from DATE-OBS"));
    assert_eq!(v(&e, "OFNAME"), txt("ss260605_05342.fits"));
    assert_eq!(v(&e, "KOAIMTYP"), txt("object"));
    assert_eq!(v(&e, "PROGID"), txt("U123"));
    assert_eq!(v(&e, "PROGPI"), txt("Smith"));
    assert_eq!(v(&e, "PROGINST"), txt("UCLA"));
    assert_eq!(extra(&e, "PROPINT"), Some(&Value::Int(18)));
    assert_eq!(v(&e, "DATLEVEL"), Some(Value::Int(0)));
    assert_eq!(v(&e, "ELAPTIME"), Some(Value::Float(30.0)));
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVECNTR"), v(&e, "WAVERED")), (Some(Value::Float(2.0)), Some(Value::Float(2.2)), Some(Value::Float(2.4))));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Int(6000)));
    assert_eq!((v(&e, "DISPSCAL"), v(&e, "SPATSCAL")), (Some(Value::Float(0.02)), Some(Value::Float(0.02))));
    assert_eq!(v(&e, "DQA_VERS"), txt("test"));
}

#[test]
fn ofname_is_the_file_name() {
    let e = run(header("IFS"));
    assert_eq!(v(&e, "OFNAME"), txt("ss260605_05342.fits"));
    assert_eq!(comment(&e.edits, "OFNAME").as_deref(), Some("KOA: Original file name"));
    // S9: the keyword table's example is a full path
    let e = run(with(header("IFS"), "OFNAME", "/data20/CD5/IFS/ss260605_05342.fits"));
    assert_eq!(v(&e, "OFNAME"), txt("ss260605_05342.fits"));
    let e = run(with(header("IFS"), "OFNAME", "ss260605_05342"));
    assert_eq!(v(&e, "OFNAME"), txt("ss260605_05342.fits"), ".fits appended");
    for h in [without(header("IFS"), "OFNAME"), with(header("IFS"), "OFNAME", "/data20/CD5/IFS/")] {
        // no file name: a warning, and the runtime's validation refuses
        // the file INVALID BAD_OFNAME (or MISMATCHED_FILENAME)
        let e = run(h);
        assert!(!stopped(&e));
        assert!(e.diagnostics.iter().any(|d| d.code == "SET_OFNAME_NAME" && d.severity == Severity::Warn), "{:?}", e.diagnostics);
        assert_eq!(v(&e, "OFNAME"), None, "nothing written");
    }
}

#[test]
fn koaimtyp_from_imtype() {
    for (imtype, want) in [
        ("object", "object"),
        ("bias", "bias"),
        ("dark", "dark"),
        ("flatlamp", "flatlamp"),
        ("flatlens", "flatlens"),
        ("wavecal", "wavecal"),
        ("Object", "object"),
        ("FLATLENS", "flatlens"),
        (" dark ", "dark"),
        ("arclamp", "undefined"),
        ("domeflat", "undefined"),
        ("None", "undefined"),
        ("", "undefined"),
    ] {
        assert_eq!(koaimtyp(imtype), want, "{imtype:?}");
    }
    for (h, want) in [
        (with(header("IFS"), "IMTYPE", "WaveCal"), "wavecal"),
        (with(header("IFS"), "IMTYPE", "  flatlamp"), "flatlamp"),
        (with(header("IFS"), "IMTYPE", "twiflat"), "undefined"),
        (without(header("IFS"), "IMTYPE"), "undefined"),
    ] {
        let e = run(h);
        assert_eq!(v(&e, "KOAIMTYP"), txt(want));
        assert_eq!(comment(&e.edits, "KOAIMTYP").as_deref(), Some("KOA: Image type from IMTYPE"));
        let udf = e.diagnostics.iter().any(|d| d.code == "KOAIMTYP_UDF" && d.severity == Severity::Warn);
        assert_eq!(udf, want == "undefined", "{:?}", e.diagnostics);
        assert!(!stopped(&e));
    }
}

#[test]
fn elapsed_time_from_exptime() {
    let e = run(header("IFS"));
    assert_eq!(v(&e, "ELAPTIME"), Some(Value::Float(30.0)));
    assert_eq!(comment(&e.edits, "ELAPTIME").as_deref(), Some("KOA: Total integration time set from EXPTIME"));
    assert_eq!(v(&run(with(header("IFS"), "ELAPTIME", 12.5)), "ELAPTIME"), None, "a usable ELAPTIME is kept");
    assert_eq!(v(&run(with(header("IFS"), "EXPTIME", 0i64)), "ELAPTIME"), Some(Value::Int(0)), "zero counts, type kept");
    assert_eq!(v(&run(with(header("IFS"), "EXPTIME", "30")), "ELAPTIME"), txt("30"), "type kept");
    let e = run(without(header("IFS"), "EXPTIME"));
    let step = e.steps.iter().find(|s| s.name == "set_elaptime").unwrap();
    assert!(!step.ok && !step.critical);
    assert!(e.diagnostics.iter().any(|d| d.code == "SET_ELAPTIME_ERROR" && d.severity == Severity::Warn));
    assert_eq!(v(&e, "ELAPTIME"), None);
    assert!(!stopped(&e));
    assert_eq!(e.steps.len(), 17, "non-critical: the list goes on");
}

#[test]
fn wavelength_table_rows() {
    let imager = [
        ("Y", 0.97, 1.02, 1.07),
        ("J", 1.17, 1.25, 1.33),
        ("H", 1.49, 1.64, 1.78),
        ("CH4s", 1.53, 1.59, 1.66),
        ("Kp", 1.95, 2.12, 2.29),
        ("Ks", 1.99, 2.15, 2.3),
        ("K", 2.03, 2.19, 2.36),
        ("Lp", 3.43, 3.78, 4.13),
        ("Ms", 4.55, 4.67, 4.79),
        ("PaBeta", 1.28, 1.29, 1.3),
        ("FeII", 1.63, 1.65, 1.66),
        ("BrGam", 2.15, 2.17, 2.19),
        ("Kcont", 2.26, 2.27, 2.29),
    ];
    let ifs = [
        ("K", 2.0, 2.2, 2.4),
        ("KL", 2.0, 3.0, 4.0),
        ("KLM", 2.0, 3.5, 5.0),
        ("L", 2.9, 3.53, 4.15),
        ("Ls", 3.1, 3.3, 3.5),
        ("M", 4.5, 4.85, 5.2),
        ("KLpol", 2.0, 3.0, 4.0),
    ];
    for (cam, rows) in [("IM", &imager[..]), ("Im", &imager[..]), ("IFS", &ifs[..]), ("ifs", &ifs[..])] {
        for &(f, b, c, r) in rows {
            assert_eq!(bands(cam, f), Some((b, c, r)), "{cam} {f}");
        }
    }
    assert_eq!((IMAGER_BANDS.len(), IFS_BANDS.len()), (13, 7));
}

#[test]
fn wavelength_matching_rules() {
    assert_eq!(bands("IM", "K+Kp"), None, "two filters: nothing");
    assert_eq!(bands("IFS", "L+K"), None);
    assert_eq!(bands("IM", "K+K"), Some((2.03, 2.19, 2.36)), "S13: a repeated filter counts once");
    assert_eq!(bands("IFS", "KL+KL+KL"), Some((2.0, 3.0, 4.0)));
    assert_eq!(bands("IM", " Kp "), Some((1.95, 2.12, 2.29)), "S13: trimmed");
    assert_eq!(bands("IM", "Open+Kp"), Some((1.95, 2.12, 2.29)), "one known filter among unknown tokens");
    assert_eq!(bands("IM", "kp"), None, "case-sensitive");
    assert_eq!(bands("IM", "KL"), None, "an IFS filter on the imager");
    assert_eq!(bands("IFS", "Kp"), None, "an imager filter on the IFS");
    assert_eq!(bands("DICHROIC", "K"), None, "no table for the dichroic");
    assert_eq!(bands("IM", ""), None);
    assert_eq!(bands("IM", "Unknown"), None, "the keyword table's example");
    let e = run_on(qramp_header(), &FLAT, &flat_host());
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVECNTR"), v(&e, "WAVERED")), (Some(Value::Float(1.95)), Some(Value::Float(2.12)), Some(Value::Float(2.29))));
    assert_eq!(comment(&e.edits, "WAVEBLUE").as_deref(), Some("KOA: Approximate blue end wavelength (microns)"));
    assert_eq!(comment(&e.edits, "WAVECNTR").as_deref(), Some("KOA: Approximate central wavelength (microns)"));
    assert_eq!(comment(&e.edits, "WAVERED").as_deref(), Some("KOA: Approximate red end wavelength (microns)"));
    let e = run(with(header("IFS"), "FILTER", "K+L"));
    assert!(e.steps.iter().find(|s| s.name == "set_wavelengths").unwrap().ok);
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVECNTR"), v(&e, "WAVERED")), (None, None, None));
}

#[test]
fn resolution_table() {
    for (f, r) in [("K", 150), ("KL", 50), ("KLM", 35), ("L", 80), ("Ls", 200), ("M", 200), ("KLpol", 20)] {
        assert_eq!(resolution("IFS", "LOWRES", f), Some(r), "LOWRES {f}");
    }
    for (f, r) in [("K", 6000), ("L", 2500), ("M", 7000)] {
        assert_eq!(resolution("IFS", "MEDRES", f), Some(r), "MEDRES {f}");
    }
    for f in ["KL", "KLM", "Ls", "KLpol"] {
        assert_eq!(resolution("IFS", "MEDRES", f), None, "MEDRES {f}");
    }
    assert_eq!(resolution("IFS", "MedRes", "K"), Some(6000), "the mode selector's name, upper-cased");
    assert_eq!(resolution("ifs", "LowRes", "M"), Some(200));
    assert_eq!(resolution("IFS", " LowRes ", "K"), Some(150), "S13: trimmed");
    assert_eq!(resolution("IFS", "MEDRES", "K+K"), Some(6000));
    assert_eq!(resolution("IFS", "MEDRES", "K+L"), None);
    assert_eq!(resolution("IFS", "Imager", "K"), None, "no table for the mode");
    assert_eq!(resolution("IM", "MEDRES", "K"), None, "IFS only");
    assert_eq!(resolution("DICHROIC", "LOWRES", "K"), None);
    let e = run(header("IFS"));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Int(6000)));
    assert_eq!(comment(&e.edits, "SPECRES").as_deref(), Some("KOA: Approximate spectral resolution"));
    assert_eq!(v(&run(with(header("IFS"), "MODSLNAM", "LowRes")), "SPECRES"), Some(Value::Int(150)));
    assert_eq!(v(&run(header("Im")), "SPECRES"), None);
}

#[test]
fn pixel_scales() {
    assert_eq!(pixel_scale("IM"), Some(0.006));
    assert_eq!(pixel_scale("im"), Some(0.006));
    assert_eq!(pixel_scale("IFS"), Some(0.02));
    assert_eq!(pixel_scale("DICHROIC"), None);
    let e = run(header("Im"));
    assert_eq!((v(&e, "DISPSCAL"), v(&e, "SPATSCAL")), (Some(Value::Float(0.006)), Some(Value::Float(0.006))));
    assert_eq!(comment(&e.edits, "DISPSCAL").as_deref(), Some("KOA: CCD pixel scale, dispersion"));
    assert_eq!(comment(&e.edits, "SPATSCAL").as_deref(), Some("KOA: CCD pixel scale, spatial"));
    let e = run(header("dichroic"));
    assert!(e.steps.iter().find(|s| s.name == "set_pixelscale").unwrap().ok);
    assert_eq!((v(&e, "DISPSCAL"), v(&e, "SPATSCAL")), (None, None));
    assert_eq!(v(&e, "WAVECNTR"), None, "no dichroic filter table");
}

#[test]
fn image_stats_of_a_2d_image() {
    let e = run_on(qramp_header(), &FLAT, &flat_host());
    assert_eq!(v(&e, "IMAGEMN"), Some(Value::Float(4.5)));
    assert_eq!(v(&e, "IMAGESD"), Some(Value::Float(2.29)));
    assert_eq!(v(&e, "IMAGEMD"), Some(Value::Float(4.5)));
    assert_eq!(comment(&e.edits, "IMAGEMN").as_deref(), Some("KOA: Image data mean"));
    assert_eq!(comment(&e.edits, "IMAGESD").as_deref(), Some("KOA: Image data standard deviation"));
    assert_eq!(comment(&e.edits, "IMAGEMD").as_deref(), Some("KOA: Image data median"));
}

#[test]
fn image_stats_of_a_cube_are_those_of_the_cds_image() {
    // S14: the whole cube (and the first read) give other numbers
    let all = compute_stats(&cube_pixels(), None);
    assert!((all.mean - 247.333).abs() < 0.01, "fixture: {}", all.mean);
    let e = run(header("IFS"));
    assert!(e.steps.iter().find(|s| s.name == "set_image_stats").unwrap().ok, "{:?}", e.diagnostics);
    // last − first = 10·i, i = 0…7
    assert_eq!(v(&e, "IMAGEMN"), Some(Value::Float(35.0)));
    assert_eq!(v(&e, "IMAGESD"), Some(Value::Float(22.91)));
    assert_eq!(v(&e, "IMAGEMD"), Some(Value::Float(35.0)));
    assert_eq!(comment(&e.edits, "IMAGESD").as_deref(), Some("KOA: Image data standard deviation"));
    // a single read: its own statistics
    let one: Vec<f32> = (0..8).map(|i| 100.0 + i as f32).collect();
    let e = run_on(header("IFS"), &[4, 2, 1], &host_with(one));
    assert_eq!(v(&e, "IMAGEMN"), Some(Value::Float(103.5)));
    assert_eq!(v(&e, "IMAGESD"), Some(Value::Float(2.29)));
}

#[test]
fn cds_of_the_last_and_first_reads() {
    assert_eq!(cds_pick(52), PlanePick { plane: 51, minus: Some(0) });
    assert_eq!(cds_pick(2), PlanePick { plane: 1, minus: Some(0) });
    assert_eq!(cds_pick(1), PlanePick { plane: 0, minus: None });
}

// ------------------------------------------------------------------ program

#[test]
fn progname_is_read_from_prognam_then_progname() {
    // S2: a real PROGNAME was ignored (program from the schedule → NONE here)
    let e = run(with(without(header("IFS"), "PROGNAM"), "PROGNAME", "U123"));
    assert_eq!(v(&e, "PROGID"), txt("U123"));
    assert_eq!(v(&e, "PROGPI"), txt("Smith"));
    let e = run(with(header("IFS"), "PROGNAME", "C999"));
    assert_eq!(v(&e, "PROGID"), txt("U123"), "PROGNAM wins when both are usable");
    let e = run(with(header("IFS"), "PROGNAM", "2026A_U123"));
    assert_eq!(v(&e, "SEMESTER"), txt("2026A"));
    assert_eq!(comment(&e.edits, "SEMESTER").as_deref(), Some("Calculated SEMESTER from PROGNAME"));
    let e = run(without(header("IFS"), "PROGNAM"));
    assert_eq!(v(&e, "PROGID"), txt("NONE"), "neither: the schedule (unavailable here)");
}

#[test]
fn engineering_accounts_and_progname() {
    // S11: scaeng/scadev were not engineering accounts
    for outdir in ["/s/sdata1800/scaeng/2026jun05/", "/s/sdata1800/scadev/2026jun05/"] {
        let e = run(with(header("IFS"), "OUTDIR", outdir));
        assert_eq!(v(&e, "PROGID"), txt("ENG"), "{outdir}");
        assert_eq!(v(&e, "PROGPI"), txt("scaleseng"));
        assert_eq!(v(&e, "PROGINST"), txt("KECK"));
        assert_eq!(v(&e, "PROGTL1"), txt("SCALES Engineering"));
    }
    // the keyword table's example PROGNAME
    let e = run(with(header("IFS"), "PROGNAM", "ENG"));
    assert_eq!(v(&e, "PROGID"), txt("ENG"));
    let e = run(with(header("IFS"), "OUTDIR", "/s/sdata1800/scales1/2026jun05/"));
    assert_eq!(v(&e, "PROGID"), txt("U123"), "a science account");
}

#[test]
fn daytime_calibrations_have_no_target_and_zero_propint() {
    let mut h = cube_host();
    h.twilight = Some(TwilightTimes { sunset: "05:10:00".into(), sunrise: "15:50:00".into() });
    let e = run_on(with(header("IFS"), "IMTYPE", "dark"), &CUBE, &h);
    assert_eq!(v(&e, "PROGID"), txt("ENG"));
    assert_eq!(extra(&e, "PROPINT"), Some(&Value::Int(0)));
    let e = run_on(header("IFS"), &CUBE, &h);
    assert_eq!(v(&e, "PROGID"), txt("U123"), "an object keeps its program");
    assert_eq!(extra(&e, "PROPINT"), Some(&Value::Int(18)));
    let ctx = context("SCALES");
    let mut job = koa_sdk::Job::new(&ctx, vec![primary(header("IFS"), 16, &CUBE)], Scales::KEYMAP, &h, Scales::hooks());
    assert!(!Scales::has_target_info(&mut job));
}

#[test]
fn a_missing_ut_stops_the_run_as_for_kcwi() {
    // S1 kept: the mapped UTC that set_ut falls back to is UT itself
    let e = run(with(without(header("IFS"), "UT"), "UTC", "04:41:52.20"));
    assert!(stopped(&e));
    assert_eq!(e.steps.len(), 2);
    let d = e.diagnostics.last().unwrap();
    assert_eq!((d.code.as_str(), d.severity), ("SET_UT_ERROR", Severity::Error));
}

#[test]
fn no_drp_products() {
    assert_eq!(Scales::DRP, drp::Rules::NONE);
    let mut ctx = context("SCALES");
    let listing = koa_sdk::testing::drp_listing(&["/d/SS.20260606.16912.20_x.fits"]);
    for level in [1, 2] {
        ctx.level = level;
        assert!(Scales::drp_scan(&ctx, "/d/", "SS.20260606.16912.20").folders.is_empty());
        assert!(koa_sdk::drp_select::<Scales>(&ctx, "/d/", "SS.20260606.16912.20", &listing).is_err());
    }
}

// ------------------------------------------------------------------ preview

#[test]
fn preview_of_a_2d_image() {
    let p = plan(qramp_header(), &[8, 4]).unwrap();
    assert_eq!(p.len(), 1);
    let p = &p[0];
    assert_eq!(p.tiles.len(), 1);
    let t = &p.tiles[0];
    assert_eq!((t.hdu, t.crop, t.plane, t.x, t.y), (0, Region { x0: 0, y0: 0, nx: 8, ny: 4 }, None, 0, 0));
    assert_eq!((t.limits_box, t.bias, t.flip_x, t.flip_y), (None, None, false, false));
    assert_eq!(p.scaling, Scaling::ZscaleSqrt);
    assert_eq!((p.quality, p.origin_lower, p.bin, p.suffix.as_str()), (85, false, 1, ""), "S12: row 0 at the top");
    assert_eq!((p.width, p.height), (None, None), "fits in 1024×1024: full size");
    assert_eq!(p.rotate, Rotation::None);
    assert!(!p.per_tile_limits && !p.nonnegative && !p.prefer_sibling);
}

#[test]
fn preview_of_a_cube_is_last_minus_first_read() {
    let p = plan(header("IFS"), &[8, 4, 5]).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].tiles[0].plane, Some(PlanePick { plane: 4, minus: Some(0) }));
    assert_eq!(p[0].tiles[0].crop, Region { x0: 0, y0: 0, nx: 8, ny: 4 });
    assert_eq!((p[0].scaling, p[0].origin_lower, p[0].quality), (Scaling::ZscaleSqrt, false, 85));
    // the full-size IFS frame of the keyword table: 2048×2048×52
    let p = plan(header("IFS"), &[2048, 2048, 52]).unwrap();
    assert_eq!(p[0].tiles[0].plane, Some(PlanePick { plane: 51, minus: Some(0) }));
    assert_eq!((p[0].width, p[0].height), (Some(1024), Some(1024)));
    let p = plan(qramp_header(), &[4096, 1000]).unwrap();
    assert_eq!((p[0].width, p[0].height), (Some(1024), Some(250)));
}

#[test]
fn other_ranks_cannot_be_previewed() {
    for shape in [&[8u64][..], &[4, 2, 3, 2][..]] {
        let err = plan(header("IFS"), shape).unwrap_err();
        assert!(err.contains("axes"), "{shape:?}: {err}");
    }
}

#[test]
fn thumbnail_geometry_follows_pillow() {
    assert_eq!(thumbnail_size(2048, 2048), Some((1024, 1024)));
    assert_eq!(thumbnail_size(4096, 1000), Some((1024, 250)));
    assert_eq!(thumbnail_size(2000, 1000), Some((1024, 512)));
    // 341.67 → 342 (floor 341 is farther from the aspect ratio)
    assert_eq!(thumbnail_size(3000, 1001), Some((1024, 342)));
    // 341.33 → 341
    assert_eq!(thumbnail_size(1000, 3000), Some((341, 1024)));
    // the short side is judged by the aspect ratio, not by the nearest integer
    assert_eq!(thumbnail_size(1029, 103), Some((1024, 103)), "102.4995 → 103");
    assert_eq!(thumbnail_size(1031, 221), Some((1024, 220)), "219.4995 → 220");
    // a tie keeps the floor
    assert_eq!(thumbnail_size(3, 2048), Some((1, 1024)), "1.5 → 1");
    // never below one pixel
    assert_eq!(thumbnail_size(100000, 1), Some((1024, 1)));
    assert_eq!(thumbnail_size(1, 5000), Some((1, 1024)));
    assert_eq!(thumbnail_size(1024, 1025), Some((1023, 1024)));
    assert_eq!(thumbnail_size(1025, 10), Some((1024, 10)));
    // never enlarged
    assert_eq!(thumbnail_size(1024, 1024), None);
    assert_eq!(thumbnail_size(1000, 20), None);
}
