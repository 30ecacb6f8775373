use koa_sdk::testing::{FixtureHost, card, context, edited, extension, primary, program};
use koa_sdk::types::{Card, Evaluation, HduKind, Rotation, Scaling, Severity, Value};
use koa_sdk::{Header, evaluate, identify, preview_plan, stopped};

use super::*;

fn red() -> Vec<Card> {
    vec![
        card("INSTRUME", "LRIS"),
        card("DATE-OBS", "2024-03-15"),
        card("UTC", "08:21:14.52"),
        card("OUTFILE", "r240315_"),
        card("FRAMENO", 17i64),
        card("PROGNAME", "U123"),
        card("ELAPTIME", 300.0),
        card("TRAPDOOR", "open"),
        card("AXESTAT", "tracking"),
        card("GRANAME", "600/7500"),
        card("WAVELEN", 7000.0),
        card("DICHNAME", "560"),
        card("SLITNAME", "long_1.0"),
        card("REDFILT", "Clear"),
    ]
}

fn blue() -> Vec<Card> {
    let mut h = with(red(), "INSTRUME", "LRISBLUE");
    h = with(h, "OUTFILE", "b240315_");
    h = with(h, "GRISNAME", "600/4000");
    h = with(h, "SLITMASK", "long_1.0");
    h = with(h, "BINNING", "2,2");
    h = with(h, "PRECOL", 102i64);
    h = with(h, "POSTPIX", 160i64);
    h
}

fn with(mut h: Vec<Card>, key: &str, v: impl Into<Value>) -> Vec<Card> {
    h.retain(|c| c.key != key);
    h.push(card(key, v));
    h
}

fn host() -> FixtureHost {
    let mut h = FixtureHost { telnr: Some(1), ..Default::default() };
    h.programs.insert("2024A_U123".into(), program("Smith", "UCLA", "Quasars", 12));
    for e in 0..5 {
        h.images.insert(e, (4, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 65535.0]));
    }
    h
}

fn hdr(h: Vec<Card>) -> Header {
    Header::new(vec![primary(h, 16, &[4, 2])], Lris::KEYMAP)
}

fn run(h: Vec<Card>) -> Evaluation {
    evaluate::<Lris>(&context("LRIS"), vec![primary(h, 16, &[4, 2])], &host())
}

fn v(e: &Evaluation, k: &str) -> Option<Value> {
    edited(&e.edits, k).cloned()
}

#[test]
fn prefixes_and_arms() {
    for (instrume, want) in [("LRIS", "LR"), ("LRISp", "LR"), ("LRISpRED", "LR"), ("LRISBLUE", "LB"), ("LRISpBLUE", "LB")] {
        let id = identify::<Lris>(&context("LRIS"), vec![primary(with(red(), "INSTRUME", instrume), 16, &[4, 2])], &host()).unwrap();
        assert_eq!(id.koaid, format!("{want}.20240315.30074.52"), "{instrume}");
    }
    let err = identify::<Lris>(&context("LRIS"), vec![primary(with(red(), "INSTRUME", "LRISGREEN"), 16, &[4, 2])], &host()).unwrap_err();
    assert!(err.iter().any(|d| d.code == "SET_INSTR_ERROR"));
}

#[test]
fn koaimtyp_open_trapdoor() {
    assert_eq!(koaimtyp(&hdr(with(red(), "SLITNAME", "GOH_LRIS"))), "focus");
    assert_eq!(koaimtyp(&hdr(with(red(), "OUTFILE", "bfoc"))), "focus");
    assert_eq!(koaimtyp(&hdr(with(red(), "ELAPTIME", 0.0))), "bias");
    assert_eq!(koaimtyp(&hdr(with(red(), "FLAMP1", "on"))), "flatlamp");
    let still = with(red(), "AXESTAT", "in position");
    assert_eq!(koaimtyp(&hdr(with(with(still.clone(), "AUTOSHUT", true), "CALNAME", "ir"))), "polcal");
    assert_eq!(koaimtyp(&hdr(with(still.clone(), "AUTOSHUT", 1i64))), "object");
    for off in ["F", "false", "0"] {
        assert_eq!(koaimtyp(&hdr(with(still.clone(), "AUTOSHUT", off))), "undefined", "AUTOSHUT {off:?} is not an exposure");
    }
    assert_eq!(koaimtyp(&hdr(with(red(), "AXESTAT", "slewing"))), "object");
    assert_eq!(koaimtyp(&hdr(with(still.clone(), "OBJECT", "sky flat"))), "object");
    assert_eq!(koaimtyp(&hdr(red())), "object");
    assert_eq!(koaimtyp(&hdr(with(still.clone(), "OBJECT", "Twilight-Flats"))), "object");
    assert_eq!(koaimtyp(&hdr(with(still.clone(), "OBJECT", "dome"))), "undefined");
    assert_eq!(koaimtyp(&hdr(with(red(), "AXESTAT", "stopped"))), "undefined");
}

#[test]
fn koaimtyp_closed_trapdoor() {
    let closed = with(red(), "TRAPDOOR", "closed");
    assert_eq!(koaimtyp(&hdr(with(closed.clone(), "LAMPS", "0,0,0,0,0,1"))), "flatlamp");
    assert_eq!(koaimtyp(&hdr(with(closed.clone(), "LAMPS", "1,0,0,0,0,0"))), "arclamp");
    assert_eq!(koaimtyp(&hdr(with(with(closed.clone(), "LAMPS", "1,0,0,0,0,0"), "GRANAME", "mirror"))), "undefined");
    assert_eq!(koaimtyp(&hdr(with(closed.clone(), "LAMPS", "0,0,0,0,0,0"))), "dark");
    assert_eq!(koaimtyp(&hdr(with(closed.clone(), "LAMPS", "0,0,2"))), "undefined", "lamps set but none on");
    assert_eq!(koaimtyp(&hdr(with(closed.clone(), "HALOGEN", "on"))), "flatlamp");
    assert_eq!(koaimtyp(&hdr(with(closed.clone(), "NEON", "on"))), "arclamp");
    let off = ["NEON", "ARGON", "CADMIUM", "ZINC", "HALOGEN", "KRYPTON", "XENON", "FEARGON", "DEUTERI"].iter().fold(closed.clone(), |h, k| with(h, k, "off"));
    assert_eq!(koaimtyp(&hdr(off)), "dark");
    assert_eq!(koaimtyp(&hdr(closed)), "undefined");
    assert_eq!(koaimtyp(&hdr(with(red(), "TRAPDOOR", "?"))), "undefined");
}

#[test]
fn blue_arcs_no_longer_crash() {
    // defect #35: a misspelled method made every blue arc a CODE_ERROR
    let arc = with(with(blue(), "TRAPDOOR", "closed"), "LAMPS", "0,1,0,0,0,0");
    assert_eq!(koaimtyp(&hdr(arc.clone())), "arclamp");
    assert_eq!(koaimtyp(&hdr(with(arc.clone(), "GRISNAME", "clear"))), "undefined");
    let e = run(arc);
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "KOAIMTYP"), Some(Value::Text("arclamp".into())));
}

#[test]
fn red_spectroscopy_wavelengths_and_date_cut() {
    let e = run(red());
    assert!(!stopped(&e), "{:?}", e.diagnostics);
    assert_eq!(v(&e, "OBSMODE"), Some(Value::Text("SPEC".into())));
    // 600/7500 new table: 7000 ± 1637.5; the 560 dichroic cuts the blue end at 5696
    assert_eq!(v(&e, "WAVERED"), Some(Value::Int(8640)));
    assert_eq!(v(&e, "WAVEBLUE"), Some(Value::Int(5700)));
    assert_eq!(v(&e, "WAVECNTR"), Some(Value::Int(7167)));
    assert_eq!(v(&e, "OFNAME"), Some(Value::Text("r240315_0017.fits".into())));
    // defect #35: the month was read as minutes, so all of 2015 used the old table
    assert!(old_grating_table("2015-05-13"));
    assert!(!old_grating_table("2015-06-01"));
    let e = run(with(with(red(), "DATE-OBS", "2015-03-01"), "DICHNAME", "mirror"));
    assert_eq!(v(&e, "WAVERED"), Some(Value::Int(8310)));
}

#[test]
fn imaging_and_blue_dichroic() {
    let e = run(with(red(), "GRANAME", "mirror"));
    assert_eq!(v(&e, "OBSMODE"), Some(Value::Text("IMAGING".into())));
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVERED")), (Some(Value::Int(5700)), Some(Value::Int(9000))));
    // blue grism, long slit; the 560 dichroic caps the red end
    let e = run(blue());
    assert_eq!((v(&e, "WAVEBLUE"), v(&e, "WAVERED")), (Some(Value::Int(3010)), Some(Value::Int(5600))));
    let e = run(with(blue(), "DICHNAME", "460"));
    assert_eq!(v(&e, "WAVERED"), Some(Value::Int(4870)));
    // defect #35: an unknown dichroic no longer makes the red end 0
    let e = run(with(blue(), "DICHNAME", "clear"));
    assert_eq!(v(&e, "WAVERED"), Some(Value::Int(5600)));
}

#[test]
fn slit_dimensions_and_resolution() {
    let e = run(red());
    assert_eq!((v(&e, "SLITLEN"), v(&e, "SLITWIDT")), (Some(Value::Float(175.0)), Some(Value::Float(1.0))));
    // fwhm 4.70 overrides: round(7167 / 4.70 / 1.0, -2) = 1500
    assert_eq!(v(&e, "SPECRES"), Some(Value::Float(1500.0)));
    assert_eq!(v(&e, "DISPSCAL"), Some(Value::Float(0.8)));
    let e = run(with(red(), "GRANAME", "831/8200"));
    // dispersion only: round(wave / (0.58·1/0.135), -1)
    let wave = match v(&e, "WAVECNTR") {
        Some(Value::Int(w)) => w as f64,
        other => panic!("{other:?}"),
    };
    assert_eq!(v(&e, "SPECRES"), Some(Value::Float(koa_sdk::pyfmt::round_tens(wave / (0.58 / 0.135), 1))));
    let e = run(with(red(), "SLITNAME", "direct"));
    assert_eq!(v(&e, "SLITLEN"), None);
}

#[test]
fn target_info_only_with_a_custom_mask() {
    let (ctx, host) = (context("LRIS"), FixtureHost::default());
    let mut j = koa_sdk::Job::new(&ctx, vec![primary(with(red(), "SLITNAME", "mask_A23"), 16, &[4, 2])], Lris::KEYMAP, &host, Lris::hooks());
    assert!(Lris::has_target_info(&mut j));
    let mut j = koa_sdk::Job::new(&ctx, vec![primary(red(), 16, &[4, 2])], Lris::KEYMAP, &host, Lris::hooks());
    assert!(!Lris::has_target_info(&mut j));
}

#[test]
fn saturation_counts_the_ccd_extensions() {
    let mut hdus = vec![primary(red(), 16, &[])];
    for i in 1..=2 {
        hdus.push(extension(i, HduKind::Image, "", vec![card("DETSEC", format!("[{}:{},1:2]", i * 4 - 3, i * 4))], 16, &[4, 2]));
    }
    let e = evaluate::<Lris>(&context("LRIS"), hdus, &host());
    assert_eq!(v(&e, "NPIXSAT"), Some(Value::Int(2)));
    assert!(!e.diagnostics.iter().any(|d| d.severity != Severity::Warn));
}

/// Final value of a keyword in HDU `ext` after the edits.
fn v_ext(e: &Evaluation, ext: u32, k: &str) -> Option<Value> {
    e.edits.iter().rev().find_map(|ed| match ed {
        koa_sdk::types::Edit::Set(s) if s.key == k && s.hdu == ext => Some(s.value.clone()),
        _ => None,
    })
}

/// Two blue CCD extensions, 100 × 40, pixel = offset + 1000·row + column.
fn blue_ccds(cards: Vec<Card>) -> (Vec<koa_sdk::types::Hdu>, FixtureHost) {
    let mut hdus = vec![primary(cards, 16, &[])];
    let mut fx = host();
    for (i, (ccdloc, amploc, off)) in [(0i64, 1i64, 0u32), (1, 2, 50_000)].into_iter().enumerate() {
        let e = i as u32 + 1;
        let cards = vec![card("NAXIS1", 100i64), card("NAXIS2", 40i64), card("CCDLOC", ccdloc), card("AMPLOC", amploc)];
        hdus.push(extension(e, HduKind::Image, "", cards, 16, &[100, 40]));
        fx.images.insert(e, (100, 40, (0..40u32).flat_map(|r| (0..100u32).map(move |c| (off + 1000 * r + c) as f32)).collect()));
    }
    (hdus, fx)
}

#[test]
fn image_statistics_per_ccd_and_amplifier() {
    // defect #35: the reference's type test skipped every extension.
    // PRECOL 20, POSTPIX 40, binning 2: precol 10, postpix 20, nx = 20 − 6 = 14
    // → boxes of ±7; imaging columns 38..=52, post-scan 82..=96, rows 13..=27
    let h = with(with(with(blue(), "PRECOL", 20i64), "POSTPIX", 40i64), "BINNING", "2,2");
    assert_eq!(stat_boxes(20, 40, 2, 100, 40), [(38, 52, 13, 27), (82, 96, 13, 27)]);
    let (hdus, fx) = blue_ccds(h);
    let e = evaluate::<Lris>(&context("LRIS"), hdus, &fx);
    // blue: CCDLOC 0 → CCD 1 (amp 1), CCDLOC 1 → CCD 2 (amp 2)
    assert_eq!(v(&e, "IM01MN01"), Some(Value::Float(20045.0)));
    assert_eq!(v(&e, "IM01MD01"), Some(Value::Float(20045.0)));
    assert_eq!(v(&e, "IM01SD01"), Some(Value::Float(4320.5)));
    assert_eq!(v(&e, "PT01MN01"), Some(Value::Float(20089.0)));
    assert_eq!(v(&e, "IM02MN02"), Some(Value::Float(70045.0)));
    assert_eq!(v(&e, "PT02MD02"), Some(Value::Float(70089.0)));
    let comment = e.edits.iter().find_map(|ed| match ed {
        koa_sdk::types::Edit::Set(s) if s.key == "PT02SD02" => Some(s.comment.clone()),
        _ => None,
    });
    assert_eq!(comment.as_deref(), Some("KOA: Postscan standard deviation CCD 2, amp location 2"));
    for k in ["IMAGEMN", "IMAGESD", "IMAGEMD"] {
        assert_eq!(v(&e, k), None, "{k}: the reference never wrote it");
    }
    // red: CCDLOC as it is; no PRECOL → nothing at all
    let (hdus, fx) = blue_ccds(with(with(with(with(red(), "PRECOL", 20i64), "POSTPIX", 40i64), "BINNING", "2,2"), "GRANAME", "mirror"));
    assert_eq!(v(&evaluate::<Lris>(&context("LRIS"), hdus, &fx), "IM00MN01"), Some(Value::Float(20045.0)));
    let (hdus, fx) = blue_ccds(blue().into_iter().filter(|c| c.key != "PRECOL").collect());
    let e = evaluate::<Lris>(&context("LRIS"), hdus, &fx);
    assert!(!e.edits.iter().any(|ed| matches!(ed, koa_sdk::types::Edit::Set(s) if s.key.starts_with("IM0") || s.key.starts_with("PT0"))));
}

#[test]
fn blue_imaging_wcs_per_extension() {
    // pick-off LRIS (3.97, −309.82): xcen = (−1.72)/0.135 + 1024, ycen = (−0.57)/0.135 + 1024
    let h = with(with(with(with(with(blue(), "GRISNAME", "clear"), "RA", "10:20:30.45"), "DEC", "-12:34:56.7"), "PONAME", "LRIS"), "ROTPOSN", 90.0);
    let mut hdus = vec![primary(h.clone(), 16, &[])];
    for (e, (crpix1, crpix2, crval1, crval2, cd11)) in [(1u32, (100.0, 200.0, 1000.0, 900.0, 2.0)), (2, (-50.0, 10.0, 3072.0, 1.0, -2.0))] {
        let cards = vec![card("CRPIX1", crpix1), card("CRPIX2", crpix2), card("CRVAL1", crval1), card("CRVAL2", crval2), card("CD1_1", cd11), card("CD2_2", 2.0)];
        hdus.push(extension(e, HduKind::Image, "", cards, 16, &[4, 2]));
    }
    let e = evaluate::<Lris>(&context("LRIS"), hdus.clone(), &host());
    assert_eq!(v(&e, "OBSMODE"), Some(Value::Text("IMAGING".into())));
    assert_eq!(v_ext(&e, 1, "CRPIX1"), Some(Value::Float(105.62962962962973)));
    assert_eq!(v_ext(&e, 1, "CRPIX2"), Some(Value::Float(259.8888888888889)));
    assert_eq!(v_ext(&e, 2, "CRPIX1"), Some(Value::Float(980.3703703703702)));
    assert_eq!(v_ext(&e, 2, "CRPIX2"), Some(Value::Float(519.3888888888889)));
    assert_eq!((v_ext(&e, 1, "CDELT1"), v_ext(&e, 2, "CDELT1")), (Some(Value::Float(0.27)), Some(Value::Float(-0.27))));
    assert_eq!(v_ext(&e, 2, "CTYPE2"), Some(Value::Text("DEC--TAN".into())));
    assert_eq!(v_ext(&e, 1, "CROTA2"), Some(Value::Float(90.0)));
    // SkyCoord(…, unit=(hourangle, deg)): hours × 14.999999999999998
    assert_eq!(v_ext(&e, 1, "CRVAL1"), Some(Value::Float(155.12687499999998)));
    assert_eq!(v_ext(&e, 2, "CRVAL2"), Some(Value::Float(-12.582416666666667)));
    assert_eq!(v(&e, "CRVAL1"), None, "the primary header keeps its own");
    // red arm, blue spectroscopy or no RA: no WCS
    let mut red_hdus = hdus.clone();
    red_hdus[0] = primary(with(with(h.clone(), "INSTRUME", "LRIS"), "GRANAME", "mirror"), 16, &[]);
    let mut spec = hdus.clone();
    spec[0] = primary(with(h.clone(), "GRISNAME", "600/4000"), 16, &[]);
    let mut no_ra = hdus;
    no_ra[0] = primary(h.into_iter().filter(|c| c.key != "RA").collect(), 16, &[]);
    for hd in [red_hdus, spec, no_ra] {
        assert_eq!(v_ext(&evaluate::<Lris>(&context("LRIS"), hd, &host()), 1, "CRPIX1"), None);
    }
}

#[test]
fn drp_products_are_pypeit_level_2_only() {
    // the reference defines no level-1 products (its PypeIt level-1 list is empty)
    let k = "LB.20240315.30074.52";
    let l = koa_sdk::testing::drp_listing(&[&format!("/r/keck_lris_blue_A/{k}_drp.fits.gz"), &format!("/r/keck_lris_blue_A/Science/spec1d_{k}.fits")]);
    let mut ctx = context("LRIS");
    ctx.level = 1;
    assert!(koa_sdk::drp_select::<Lris>(&ctx, "/r/keck_lris_blue_A", k, &l).is_err());
    assert!(Lris::drp_scan(&ctx, "/r/keck_lris_blue_A", k).folders.is_empty());
    ctx.level = 2;
    let got = koa_sdk::drp_select::<Lris>(&ctx, "/r/keck_lris_blue_A", k, &l).unwrap();
    assert!(got.iter().any(|p| p.src.ends_with(&format!("spec1d_{k}.fits"))), "{got:?}");
}

#[test]
fn previews() {
    let p = preview_plan::<Lris>(&context("LRIS"), vec![primary(red(), 16, &[4, 2])]);
    assert_eq!(p[0].scaling, Scaling::HistogramEqualize);
    // blue: four amplifiers by DETSEC, one row, full size
    let mut hdus = vec![primary(blue(), 16, &[])];
    for (i, det) in [(1, "[2049:3072,1:4096]"), (2, "[1:1024,1:4096]"), (3, "[3073:4096,1:4096]"), (4, "[2048:1025,1:4096]")] {
        hdus.push(extension(i, HduKind::Image, "", vec![card("DETSEC", det)], 16, &[700, 100]));
    }
    let p = preview_plan::<Lris>(&context("LRIS"), hdus);
    assert_eq!(p.len(), 1);
    let order: Vec<u32> = p[0].tiles.iter().map(|t| t.hdu).collect();
    assert_eq!(order, [2, 4, 1, 3]);
    assert!(p[0].tiles[1].flip_x);
    assert_eq!(p[0].tiles[0].crop.x0, 51, "precol 102 / binning 2");
    assert_eq!(p[0].tiles[0].crop.nx, 700 - 51 - 80);
    assert_eq!(p[0].tiles[1].x, 569);
    assert_eq!((p[0].rotate, p[0].bin, p[0].nonnegative, p[0].per_tile_limits), (Rotation::None, 1, true, true));
    // blue: a missing DETSEC aborts the preview (MAKE_JPG_ERROR), unlike DEIMOS
    let mut missing = vec![primary(blue(), 16, &[])];
    for (i, det) in [(1, Some("[2049:3072,1:4096]")), (2, None)] {
        let cards = det.map(|d| vec![card("DETSEC", d)]).unwrap_or_default();
        missing.push(extension(i, HduKind::Image, "", cards, 16, &[700, 100]));
    }
    let err = koa_sdk::preview_plan_checked::<Lris>(&context("LRIS"), missing).unwrap_err();
    assert!(err.contains("HDU 2 has no DETSEC"), "{err}");
}
