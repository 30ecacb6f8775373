use koa_sdk::testing::{FixtureHost, card, context, edited, extension, primary, program};
use koa_sdk::types::{Card, Evaluation, HduKind, Scaling, TwilightTimes, Value};
use koa_sdk::{Header, evaluate, identify, preview_plan, stopped};

use super::*;

fn header() -> Vec<Card> {
    vec![
        card("INSTRUME", "KPF"),
        card("DATE-OBS", "2024-03-15"),
        card("UT", "08:21:14.52"),
        card("OFNAME", "KP.20240315.30074.52.fits"),
        card("PROGNAME", "U123"),
        card("IMTYPE", "Object"),
        card("OBJECT", "HD 10700"),
        card("ELAPSED", 299.6),
        card("GREEN", "YES"),
        card("RED", "YES"),
        card("CA_HK", "NO"),
    ]
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(1), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Radial velocities", 18));
    h.twilight = Some(TwilightTimes { sunset: "04:30:00".into(), sunrise: "16:20:00".into() });
    h
}

fn run(h: Vec<Card>) -> Evaluation {
    evaluate::<Kpf>(&context("KPF"), vec![primary(h, 8, &[])], &host())
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

#[test]
fn koaid_from_ofname_suffix_not_character_set() {
    let id = identify::<Kpf>(&context("KPF"), vec![primary(header(), 8, &[])], &host()).unwrap();
    assert_eq!((id.koaid.as_str(), id.prefix.as_str()), ("KP.20240315.30074.52", "KP"));
    assert_eq!(koaid_from_ofname("/s/sdata1701/kpf/KP.20240315.30074.52.fits", "2024-03-15").as_deref(), Some("KP.20240315.30074.52"));
    assert_eq!(koaid_from_ofname("KP.20240315.30074.52", "2024-03-15").as_deref(), Some("KP.20240315.30074.52"));
    // defect #37: rstrip('.fits') strips any of . f i t s, so these became
    // KP.20240315.30074.52; only the suffix `.fits` is removed
    for bad in ["KP.20240315.30074.52.fits.fits", "KP.20240315.30074.52.fit", "KP.20240315.30074.52s", "KP.20240315.30074.52.tsif"] {
        assert_eq!(koaid_from_ofname(bad, "2024-03-15"), None, "{bad}");
    }
    assert_eq!(koaid_from_ofname("KP.20240315.30074.52.fits", "2024-03-16"), None, "date mismatch");
    assert_eq!(koaid_from_ofname("KP.20240315.3007.52.fits", "2024-03-15"), None);
    assert_eq!(koaid_from_ofname("KP.20241315.30074.52.fits", "2024-13-15"), None);
    let err = identify::<Kpf>(&context("KPF"), vec![primary(with(header(), "OFNAME", "junk.fits"), 8, &[])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "KOAID_CREATE_FAIL"));
    // no OFNAME: the base algorithm with prefix KP
    let mut h = header();
    h.retain(|c| c.key != "OFNAME");
    h.push(card("UTC", "08:21:14.52"));
    let id = identify::<Kpf>(&context("KPF"), vec![primary(h, 8, &[])], &host()).unwrap();
    assert_eq!(id.koaid, "KP.20240315.30074.52");
}

#[test]
fn koaimtyp_and_elapsed_time() {
    let t = |h: Vec<Card>| koaimtyp(&Header::new(vec![primary(h, 8, &[])], Kpf::KEYMAP));
    assert_eq!(t(header()).as_deref(), Some("object"));
    assert_eq!(t(with(header(), "OBJECT", "SoCal")).as_deref(), Some("solar"));
    assert_eq!(t(with(header(), "IMTYPE", "Twiflat")).as_deref(), Some("twiflat"));
    for imtype in ["Bias", "Dark", "Arclamp", "Flatlamp", "Domeflat", "Object"] {
        assert_eq!(t(with(header(), "IMTYPE", imtype)), Some(imtype.to_lowercase()), "{imtype}");
    }
    assert_eq!(t(with(header(), "IMTYPE", " ")).as_deref(), Some("undefined"), "blank IMTYPE");
    assert_eq!(t(with(header(), "IMTYPE", "Etalon")).as_deref(), Some("undefined"));
    assert_eq!(t(with(header(), "KOAIMTYP", "arclamp")), None, "a usable header value is kept");
    // defect #37: KOAIMTYP_UDF is reported
    let e = run(with(header(), "IMTYPE", "Etalon"));
    assert!(e.diagnostics.iter().any(|d| d.code == "KOAIMTYP_UDF"));
    let e = run(header());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "ELAPTIME"), Some(Value::Int(300)));
    // defect #37: the difference keeps its days
    assert_eq!(seconds_between("2024-03-15T23:59:50.0", "2024-03-16T00:00:10.5"), Some(20.5));
    let mut h = header();
    h.retain(|c| c.key != "ELAPSED");
    h.push(card("DATE-BEG", "2024-03-15T08:21:14.52"));
    h.push(card("DATE-END", "2024-03-15T08:26:14.52"));
    assert_eq!(v(&run(h), "ELAPTIME"), Some(Value::Int(300)));
}

#[test]
fn instrument_program_and_wavelengths() {
    let e = run(with(header(), "INSTRUME", "KPF-CC"));
    assert_eq!(v(&e, "INSTRUME"), Some(Value::Text("KPF".into())));
    assert_eq!(v(&e, "INSTSLCT"), Some(Value::Text("KPF-CC".into())));
    let mut h = header();
    h.retain(|c| c.key != "PROGNAME");
    h.push(card("GRPROGNA", "U123"));
    let e = run(h);
    assert_eq!(v(&e, "PROGNAME"), Some(Value::Text("U123".into())));
    assert_eq!(v(&e, "PROGID"), Some(Value::Text("U123".into())));
    assert_eq!(v(&e, "PROGTITL"), Some(Value::Text("Radial velocities".into())));
    assert_eq!(wavelengths("YES", "YES", "NO"), (4450, 6575.0, 8700));
    assert_eq!(wavelengths("yes", "yes", "yes"), (3900, 6300.0, 8700));
    assert_eq!(wavelengths("NO", "YES", "NO"), (5900, 7300.0, 8700));
    assert_eq!(wavelengths("YES", "NO", "NO"), (4450, 5175.0, 5900));
    assert_eq!(wavelengths("NO", "NO", "NO"), (5900, 5175.0, 4450));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Float(6575.0)));
}

#[test]
fn daytime_frames_have_no_target() {
    let ctx = context("KPF");
    let h = host();
    let mut j = koa_sdk::Job::new(&ctx, vec![primary(header(), 8, &[])], Kpf::KEYMAP, &h, Kpf::hooks());
    assert!(Kpf::has_target_info(&mut j), "night");
    let mut j = koa_sdk::Job::new(&ctx, vec![primary(with(header(), "UT", "20:00:00.00"), 8, &[])], Kpf::KEYMAP, &h, Kpf::hooks());
    assert!(!Kpf::has_target_info(&mut j), "day");
}

#[test]
fn one_preview_per_detector() {
    let mut hdus = vec![primary(header(), 8, &[])];
    let mut i = 1;
    for det in ["GREEN", "RED"] {
        for amp in 1..=4 {
            hdus.push(extension(i, HduKind::Image, &format!("{det}_AMP{amp}"), vec![card("EXTNAME", format!("{det}_AMP{amp}"))], 16, &[10, 8]));
            i += 1;
        }
    }
    hdus.push(extension(i, HduKind::Image, "CA_HK", vec![card("EXTNAME", "CA_HK")], 16, &[6, 4]));
    let p = preview_plan::<Kpf>(&context("KPF"), hdus);
    let names: Vec<&str> = p.iter().map(|p| p.suffix.as_str()).collect();
    assert_eq!(names, ["_red", "_green", "_ca_hk"]);
    assert!(p.iter().all(|p| p.scaling == Scaling::ZscaleSqrt && p.origin_lower));
    let pos: Vec<(u32, u32)> = p[1].tiles.iter().map(|t| (t.x, t.y)).collect();
    assert_eq!(pos, [(0, 0), (10, 0), (0, 8), (10, 8)]);
    assert_eq!(p[2].tiles.len(), 1);
}

#[test]
fn drp_roots_and_destinations() {
    let k = "KP.20240315.12345.67";
    let listing = koa_sdk::testing::drp_listing(&[
        &format!("/k/L1/20240315/{k}_L1.fits"),
        "/k/L1/20240315/other.fits",
        &format!("/k/L2/20240315/{k}_L2.fits"),
        &format!("/k/logs/20240315/{k}.log.txt"),
        &format!("/k/QLP/20240315/{k}/a/{k}_spec_zoomable.png"),
        &format!("/k/QLP/20240315/{k}/b/{k}_ccd.png"),
        &format!("/k/QLP/20240315/{k}/{k}_top.png"),
    ]);
    let stage = "/k/L1/20240315";
    let mut ctx = context("KPF");
    ctx.level = 1;
    assert_eq!(Kpf::drp_scan(&ctx, stage, k).folders, [koa_sdk::drp::folder(stage, true)]);
    let rels = |ctx: &Context| {
        let mut r: Vec<String> = koa_sdk::drp_select::<Kpf>(ctx, stage, k, &listing).unwrap().into_iter().map(|p| p.rel).collect();
        r.sort();
        r
    };
    assert_eq!(rels(&ctx), [format!("{k}/{k}_L1.fits")]);
    ctx.level = 2;
    let scan: Vec<String> = Kpf::drp_scan(&ctx, stage, k).folders.into_iter().map(|f| f.path).collect();
    assert_eq!(scan, ["/k/L1/20240315", "/k/L2/20240315", "/k/logs/20240315", &format!("/k/QLP/20240315/{k}")]);
    assert_eq!(
        rels(&ctx),
        [format!("{k}/{k}.log.txt"), format!("{k}/{k}_L1.fits"), format!("{k}/{k}_L2.fits"), format!("{k}/QLP/a/{k}_spec.png"), format!("{k}/QLP/b/{k}_ccd.png")],
        "_zoomable removed; of the quick-look tree only the last sub-folders"
    );
}

fn comment_of(edits: &[koa_sdk::types::Edit], key: &str) -> Option<String> {
    edits.iter().rev().find_map(|e| match e {
        koa_sdk::types::Edit::Set(s) if s.key == key => Some(s.comment.clone()),
        _ => None,
    })
}

#[test]
fn utc_from_ut_as_kpf_sets_it() {
    // KPF's set_utc: UT copied verbatim with its own comment (OFNAME and base paths)
    let id = identify::<Kpf>(&context("KPF"), vec![primary(header(), 8, &[])], &host()).unwrap();
    assert_eq!(edited(&id.edits, "UTC"), Some(&Value::Text("08:21:14.52".into())));
    assert_eq!(comment_of(&id.edits, "UTC").as_deref(), Some("KOA: UTC keyword set from UT keyword"));
    let odd = identify::<Kpf>(&context("KPF"), vec![primary(with(header(), "UT", "8:21"), 8, &[])], &host()).unwrap();
    assert_eq!(edited(&odd.edits, "UTC"), Some(&Value::Text("8:21".into())), "not replaced by the file time");
    let mut h = header();
    h.retain(|c| c.key != "OFNAME");
    let id = identify::<Kpf>(&context("KPF"), vec![primary(h.clone(), 8, &[])], &host()).unwrap();
    assert_eq!(id.koaid, "KP.20240315.30074.52");
    assert_eq!(comment_of(&id.edits, "UTC").as_deref(), Some("KOA: UTC keyword set from UT keyword"));
    // a usable UTC is kept as it is: an invalid one fails the KOAID (the reference's strptime)
    let err = identify::<Kpf>(&context("KPF"), vec![primary(with(h, "UTC", "garbage"), 8, &[])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "KOAID_CREATE_FAIL"));
}

#[test]
fn header_koaid_wins_and_base_path_checks_instrume() {
    let id = identify::<Kpf>(&context("KPF"), vec![primary(with(header(), "KOAID", "KP.20240315.11111.11.fits"), 8, &[])], &host()).unwrap();
    assert_eq!(id.koaid, "KP.20240315.11111.11", "set_koaid keeps a KOAID already in the header");
    assert_eq!(edited(&id.edits, "KOAID"), None);
    // without OFNAME the base make_koaid runs set_instr first
    let mut h = header();
    h.retain(|c| c.key != "OFNAME");
    let id = identify::<Kpf>(&context("KPF"), vec![primary(with(h.clone(), "INSTRUME", "KPF-CC"), 8, &[])], &host()).unwrap();
    assert_eq!(edited(&id.edits, "INSTRUME"), Some(&Value::Text("KPF".into())));
    let err = identify::<Kpf>(&context("KPF"), vec![primary(with(h, "OUTDIR", "/s/sdata1701/mira/"), 8, &[])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "SET_INSTR_ERROR"));
}

#[test]
fn progid_override_skips_the_progname_fallback() {
    let mut h = header();
    h.retain(|c| c.key != "PROGNAME");
    h.push(card("GRPROGNA", "U123"));
    let mut ctx = context("KPF");
    ctx.progid_override = Some("U123".into());
    let e = evaluate::<Kpf>(&ctx, vec![primary(h, 8, &[])], &host());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "PROGNAME"), None, "--progid given: PROGNAME is not taken from GRPROGNA");
    assert_eq!(v(&e, "PROGID"), Some(Value::Text("U123".into())));
}
