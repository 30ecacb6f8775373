use koa_sdk::testing::{FixtureHost, card, context, edited, extension, primary, program};
use koa_sdk::types::{Card, Evaluation, Followup, HduKind, Rotation, Value};
use koa_sdk::{Header, evaluate, identify, preview_plan, preview_plan_checked, stopped};

use super::*;

fn header() -> Vec<Card> {
    vec![
        card("INSTRUME", "DEIMOS: real science mosaic CCD subsystem"),
        card("OUTDIR", "/s/sdata1001/deimos1/2024mar15/"),
        card("DATE-OBS", "2024-03-15"),
        card("UTC", "08:21:14.52"),
        card("OUTFILE", "d0315_"),
        card("FRAMENO", 17i64),
        card("PROGNAME", "U123"),
        card("OBSTYPE", "Object"),
        card("SLMSKNAM", "ngc4565a"),
        card("HATCHPOS", "open"),
        card("LAMPS", "Off"),
        card("GRATENAM", "900ZD"),
        card("GRATEPOS", 3i64),
        card("G3TLTWAV", 5504.0),
        card("G3TLTNAM", "Tilt"),
        card("DWFILNAM", "GG455"),
        card("MJD-OBS", 60384.3),
        card("FCSIMGFI", "/sdata1001/deimos1/2024mar15/fcs/fcs0001.fits"),
        card("BINNING", "1,1"),
        card("PRECOL", 10i64),
        card("POSTPIX", 20i64),
    ]
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

/// Primary + 8 CCDs in two rows of four (DETSEC y beyond 4096 for the second row).
fn hdus(h: Vec<Card>) -> Vec<koa_sdk::types::Hdu> {
    let mut v = vec![primary(h, 16, &[])];
    for i in 1..=8u32 {
        let col = (i - 1) % 4;
        let (y1, y2) = if i <= 4 { (1, 4096) } else { (4097, 8192) };
        let (x1, x2) = (col as i64 * 2048 + 1, col as i64 * 2048 + 2048);
        let det = if i == 2 { format!("[{x2}:{x1},{y1}:{y2}]") } else { format!("[{x1}:{x2},{y1}:{y2}]") };
        v.push(extension(i, HduKind::Image, "", vec![card("DETSEC", det)], 16, &[80, 40]));
    }
    v
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(2), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Galaxies", 18));
    for e in 1..=8 {
        h.images.insert(e, (80, 40, (0..3200).map(|i| if i == 0 { 65535.0 } else { 1000.0 }).collect()));
    }
    h.koaids.insert("/s/sdata1001/deimos1/2024mar15/fcs/fcs0001.fits".into(), "DF.20240315.30000.00".into());
    h
}

fn run(h: Vec<Card>) -> Evaluation {
    evaluate::<Deimos>(&context("DEIMOS"), hdus(h), &host())
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

#[test]
fn prefixes_and_fcs_dates_before_the_koaid() {
    let id = identify::<Deimos>(&context("DEIMOS"), hdus(header()), &host()).unwrap();
    assert_eq!(id.koaid, "DE.20240315.30074.52");
    // defect #33: the FCS frame's KOAID is built from DATE, not the stale DATE-OBS/UTC
    let fcs = with(with(with(header(), "OUTDIR", "/s/sdata1001/deimos1/2024mar15/fcs/"), "DATE", "2024-03-16T01:02:03"), "UTC", "23:59:59.99");
    let id = identify::<Deimos>(&context("DEIMOS"), hdus(fcs), &host()).unwrap();
    assert_eq!(id.koaid, "DF.20240316.03723.00");
    assert_eq!(edited(&id.edits, "DATE-OBS"), Some(&Value::Text("2024-03-16".into())));
    assert!(identify::<Deimos>(&context("DEIMOS"), hdus(with(with(header(), "INSTRUME", "LRIS"), "OUTDIR", "/s/sdata241/lris1/")), &host()).is_err());
}

#[test]
fn koaimtyp_branches() {
    let t = |h: Vec<Card>| koaimtyp(&Header::new(vec![primary(h, 16, &[])], Deimos::KEYMAP));
    assert_eq!(t(with(header(), "OUTDIR", "/s/sdata1001/deimos1/fcs/")), "fcscal");
    assert_eq!(t(with(header(), "OBSTYPE", "Bias")), "bias");
    assert_eq!(t(with(header(), "OBSTYPE", "Dark")), "dark");
    assert_eq!(t(with(header(), "SLMSKNAM", "GOH_X")), "focus");
    let closed = with(header(), "HATCHPOS", "closed");
    assert_eq!(t(with(closed.clone(), "LAMPS", "Qz")), "flatlamp");
    assert_eq!(t(with(header(), "FLSPECTR", "on")), "flatlamp");
    assert_eq!(t(with(closed.clone(), "LAMPS", "Ne Ar Kr")), "arclamp");
    assert_eq!(t(with(header(), "FLIMAGIN", "on")), "flatlamp");
    assert_eq!(t(with(closed.clone(), "LAMPS", "Off")), "undefined", "lamps off: no arc");
    assert_eq!(t(with(with(closed.clone(), "LAMPS", "Ne"), "GRATEPOS", 4i64)), "arclamp");
    assert_eq!(t(with(with(closed.clone(), "LAMPS", "Ne"), "GRATEPOS", 2i64)), "undefined");
    assert_eq!(t(header()), "object");
    assert_eq!(t(closed), "undefined");
}

#[test]
fn keywords_of_a_mask_frame() {
    let e = run(header());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "OFNAME"), Some(Value::Text("d0315_0017.fits".into())));
    assert_eq!(v(&e, "OBSMODE"), Some(Value::Text("mos".into())));
    assert_eq!(v(&e, "FILTER"), Some(Value::Text("GG455".into())));
    assert_eq!(v(&e, "CAMERA"), Some(Value::Text("DEIMOS".into())));
    assert_eq!(v(&e, "MJD"), Some(Value::Float(60384.3)));
    assert_eq!(v(&e, "NEXTEN"), Some(Value::Int(8)));
    assert_eq!(v(&e, "DETSEC01"), Some(Value::Text("[1:2048,1:4096]".into())));
    assert_eq!(v(&e, "DETSEC09"), Some(Value::Text("null".into())));
    assert_eq!(v(&e, "NPIXSAT"), Some(Value::Int(8)));
    // 900ZD around round(5504, -1) = 5500, length 3530
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVECNTR"), v(&e, "WAVERED")), (Some(Value::Int(3740)), Some(Value::Int(5500)), Some(Value::Int(7260))));
    assert_eq!(v(&e, "DISPSCAL"), Some(Value::Float(0.44)));
    assert_eq!(v(&e, "SPECRES"), Some(Value::Float(1480.0)));
    // FCS association completed (the reference left set_fcs_koaid unfinished)
    assert_eq!(v(&e, "FCSKOAID"), Some(Value::Text("DF.20240315.30000.00.fits".into())));
    assert_eq!(e.followups, vec![Followup::QueueLevel((1, "RTI".into()))]);
}

#[test]
fn obsmode_for_every_grating_slot() {
    let m = |h: Vec<Card>| obsmode(&Header::new(vec![primary(h, 16, &[])], Deimos::KEYMAP));
    // defect #33: slot 2 gratings were "null"
    assert_eq!(m(with(with(header(), "GRATEPOS", 2i64), "G2TLTNAM", "Tilt")), "mos");
    assert_eq!(m(with(header(), "SLMSKNAM", "LVMslitC")), "longslit");
    assert_eq!(m(with(header(), "G3TLTNAM", "Zeroth_Order")), "imaging");
    assert_eq!(m(with(header(), "GRATENAM", "Mirror")), "imaging");
    assert_eq!(m(with(header(), "GRATENAM", "")), "unknown");
    let e = run(with(with(header(), "GRATENAM", "Mirror"), "DWFILNAM", "R"));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Int(6500)));
    assert_eq!(v(&e, "DISPSCAL"), Some(Value::Float(0.1185)));
}

#[test]
fn fcs_association_pending_and_reprocess() {
    let e = run(with(header(), "FCSIMGFI", "/sdata1001/deimos1/2024mar15/fcs/fcs0099.fits"));
    assert_eq!(v(&e, "FCSKOAID"), Some(Value::Text("".into())));
    assert!(e.diagnostics.iter().any(|d| d.code == "FCSKOAID_NOT_FOUND"));
    let mut ctx = context("DEIMOS");
    ctx.reprocess = true;
    let e = evaluate::<Deimos>(&ctx, hdus(header()), &host());
    assert!(e.followups.is_empty(), "no new level-1 row when reprocessing");
}

#[test]
fn mosaic_preview_two_rows_rotated() {
    let p = preview_plan::<Deimos>(&context("DEIMOS"), hdus(header()));
    assert_eq!(p.len(), 1);
    let p = &p[0];
    assert_eq!((p.rotate, p.bin, p.tiles.len()), (Rotation::Cw90, 2, 8));
    assert_eq!(p.tiles.iter().map(|t| t.hdu).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(p.tiles[1].flip_x);
    assert_eq!((p.tiles[4].y, p.tiles[0].y), (40, 0));
    assert_eq!(p.tiles[1].x, 50);
    assert_eq!(p.tiles[0].bias.map(|b| (b.x0, b.nx)), Some((61, 18)));
    // an FCS frame: the base renderer
    let fcs = with(header(), "OUTDIR", "/s/sdata1001/deimos1/fcs/");
    let p = preview_plan::<Deimos>(&context("DEIMOS"), vec![primary(fcs, 16, &[100, 100])]);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].tiles[0].hdu, 0);
}

#[test]
fn an_unparsable_detsec_aborts_the_preview_and_a_missing_one_skips_the_hdu() {
    let mut h = hdus(header());
    let det = h[3].cards.iter_mut().find(|c| c.key == "DETSEC").unwrap();
    det.value = Value::Text("[garbage]".into());
    let err = preview_plan_checked::<Deimos>(&context("DEIMOS"), h.clone()).unwrap_err();
    assert!(err.contains("DETSEC") && err.contains("HDU 3"), "{err}");
    h[3].cards.retain(|c| c.key != "DETSEC");
    let p = preview_plan_checked::<Deimos>(&context("DEIMOS"), h).unwrap();
    assert_eq!(p[0].tiles.len(), 7);
    assert!(!p[0].tiles.iter().any(|t| t.hdu == 3));
}
