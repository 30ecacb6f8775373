//! HIRES (spec instruments.md §5): key map OFNAME→OUTFILE, prefix HI,
//! KOAIMTYP (also IMAGETYP) from shutter, lamps, mirror and covers, echelle
//! wavelengths, instrument status, per-CCD image and post-scan statistics,
//! saturation, S/N, slit values from the decker table, gain and read noise
//! per amplifier, sky PA, sub-exposures; one JPEG per CCD extension.
//!
//! Reference defects fixed: #9 (KOAIMTYP is set before set_prog_info and
//! set_propint); #34 (BINNING spaces are removed instead of raising;
//! instrument status compares numbers, checks the XCOV cover too and drops
//! the impossible TEMPDET test; sub-exposures are reported — SUBEXP True —
//! instead of raising; the wavelength search compares orders, not floats,
//! and ends on a shift of exactly 120; an out-of-range end is `null`, the
//! others are still written).
//!
//! As the reference: the wavelength arithmetic and its order-search bound
//! (99 steps, 100 when the last went down); a blank XDISPERS is RED
//! (astropy reads it as `''`, not usable); SIG2NOIS medians are NumPy's (a
//! NaN pixel in the band makes SIG2NOIS null).

use koa_sdk::common;
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::pyfmt::{floor_mod, round_tens, round_to};
use koa_sdk::types::{Context, Preview, Region, Rotation, Value};
use koa_sdk::value::{is_zero, to_f64, to_text, usable};
use koa_sdk::{Header, Instrument, KeyMap, program};

pub struct Hires;

fn raw_num(h: &Header, k: &str) -> Option<f64> {
    h.raw(k).filter(|v| usable(v)).and_then(to_f64)
}

/// KOAIMTYP (spec §5).
pub fn koaimtyp(h: &Header) -> String {
    let need = ["AUTOSHUT", "LAMPNAME", "LMIRRIN", "DARKCLOS", "TTIME"];
    if need.iter().any(|k| !h.raw(k).is_some_and(usable)) {
        return "undefined".into();
    }
    let n = |k: &str| raw_num(h, k);
    let mut lamp = h.raw_text("LAMPNAME").unwrap_or_default().trim().to_string();
    let truthy = |k: &str| h.raw(k).is_some_and(|v| matches!(v, Value::Logical(true)) || to_f64(v).is_some_and(|x| x != 0.0) || to_text(v).eq_ignore_ascii_case("true"));
    if lamp == "undefined" && (truthy("LAMPQTZ1") || truthy("LAMPQTZ2")) {
        lamp = "quartz".into();
    }
    let ttime0 = n("TTIME") == Some(0.0);
    if n("AUTOSHUT") == Some(0.0) {
        let on = lamp != "none" && (n("LMIRRIN") != Some(0.0) || n("DARKCLOS") != Some(1.0));
        let suffix = if on { "_lamp_on" } else { "" };
        return format!("{}{suffix}", if ttime0 { "bias" } else { "dark" });
    }
    if ["DECKNAME", "CATCUR1", "CATCUR2", "HATCLOS"].iter().any(|k| !h.raw(k).is_some_and(usable)) {
        return "undefined".into();
    }
    let deck = h.raw_text("DECKNAME").unwrap_or_default().trim().to_string();
    let (mirror_out, hat) = (n("LMIRRIN") == Some(0.0), n("HATCLOS"));
    if lamp.contains("quartz") {
        if mirror_out && hat == Some(0.0) {
            return "object_lamp_on".into();
        }
        if mirror_out && hat == Some(1.0) {
            return "undefined".into();
        }
        return if deck == "D5" { "trace" } else { "flatlamp" }.into();
    }
    if lamp.contains("ThAr") {
        let cur = if lamp == "ThAr2" { n("CATCUR2") } else { n("CATCUR1") };
        let mut t = if cur.is_some_and(|c| c >= 5.0) { if deck == "D5" { "focus" } else { "arclamp" } } else { "undefined" };
        if mirror_out && hat == Some(0.0) {
            t = "object_lamp_on";
        }
        if mirror_out && hat == Some(1.0) {
            t = "undefined";
        }
        if n("XCOVCLOS") == Some(1.0) && n("ECOVCLOS") == Some(1.0) {
            t = "undefined";
        }
        return t.into();
    }
    if lamp.contains("undefined") {
        return "undefined".into();
    }
    if hat == Some(1.0) {
        return if ttime0 { "bias" } else { "dark" }.into();
    }
    if ttime0 { "bias" } else { "object" }.into()
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(&job.hdr);
    common::record_koaimtyp(job, &t, "could not determine the image type")?;
    job.hdr.set("IMAGETYP", t, "KOA: Image type");
    Ok(true)
}

fn set_utend(job: &mut Job) -> StepResult {
    if let Some(v) = job.hdr.raw("UTC-END").filter(|v| usable(v)).cloned() {
        job.hdr.set("UT-END", v, "KOA: Duplicate of UTC-END");
    }
    Ok(true)
}

fn fix_propint(job: &mut Job) -> StepResult {
    if let Some(p) = job.extra("PROPINT").cloned() {
        for k in ["PROPINT1", "PROPINT2", "PROPINT3", "PROPMIN"] {
            job.set_extra(k, p.clone());
        }
    }
    Ok(true)
}

fn fix_binning(job: &mut Job) -> StepResult {
    if let Some(b) = job.hdr.raw_text("BINNING") {
        if b.contains(' ') {
            let c = job.hdr.card(0, "BINNING").map(|c| c.comment.clone()).unwrap_or_default();
            job.hdr.set("BINNING", b.replace(' ', ""), &c);
        }
    }
    Ok(true)
}

fn binning(h: &Header) -> (f64, f64) {
    let (bx, by) = h.binning();
    (bx as f64, by as f64)
}

/// Echelle wavelengths at one cross-disperser position, with the
/// reference's arithmetic: (C, B, R) in Å snapped to tens, `None` out of
/// range; `None` overall for a cross disperser other than RED or UV.
pub fn wavelengths(xd: &str, xdangl: f64, echangl: f64, xdsigmai: f64) -> Option<[Option<i64>; 3]> {
    use std::f64::consts::PI;
    let (k, a, b, c) = match xd {
        "RED" => (62.0 * 5748.0, 1.4088, -306.6910, 16744.1946),
        "UV" => (97.0 * 3677.0, 0.9496, -266.2792, 19943.7496),
        _ => return None,
    };
    let cam = 40.0 * PI / 180.0;
    let alpha = (xdangl + (25.0 - 0.63)) * PI / 180.0;
    let d = 1e7 / xdsigmai;
    let f = |x: f64| d * ((1.0 + cam.cos()) * x.sin() - cam.sin() * x.cos());
    let delta = (3072.0 * 0.015f64).atan2(1.92 * 762.0);
    let vals = [f(alpha).trunc(), f(alpha - delta).trunc(), f(alpha + delta).trunc()];
    let poly = |o: f64| a * (o * o) + b * o + c;
    let mut newy = 0.0;
    let mut out = [None; 3];
    for (i, v) in vals.iter().enumerate() {
        if *v == 0.0 {
            continue; // the reference divides by zero
        }
        let mut order = (k / v).floor();
        if i == 0 {
            newy = poly(order) - 3072.0;
        } else {
            // the reference's search: 99 order steps, and a 100th when the
            // 99th went down (its `trycount < 100` test lets that one loop
            // once more); it spun forever on a shift of exactly 120 (defect #34)
            let mut down = false;
            for step in 1..=100 {
                let y2 = poly(order) - newy;
                if step == 100 && !down {
                    break;
                }
                if y2 < 120.0 {
                    order -= 1.0;
                    down = true;
                } else if y2 > 6144.0 {
                    order += 1.0;
                    down = false;
                } else {
                    break;
                }
            }
        }
        if order == 0.0 {
            continue; // the reference divides by zero
        }
        let dlamb = -0.1407 * order + 18.005;
        let mut w = k / order + 4.0 * dlamb * echangl;
        let r = floor_mod(w, 10.0);
        w = if r < 5.0 { w - r } else { w + (10.0 - r) };
        out[i] = (1000.0..=20000.0).contains(&w).then(|| round_tens(w, 1) as i64);
    }
    Some(out)
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let xd = h.text("XDISPERS").map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| "RED".into());
    let ok = |k: &str| h.raw(k).is_some_and(|v| usable(v) && !is_zero(v) && !matches!(v, Value::Logical(false)));
    let mut w = [None; 3];
    if ok("XDCAL") && ok("ECHCAL") && ok("XDSIGMAI") {
        let (Some(xda), Some(eca), Some(sig)) = (h.f64("XDANGL"), h.f64("ECHANGL"), h.f64("XDSIGMAI")) else {
            job.warn("SET_WAVELENGTHS_ERROR", "XDANGL/ECHANGL missing");
            return Ok(false);
        };
        match wavelengths(&xd, xda, eca, sig) {
            Some(v) => w = v,
            None => {
                job.warn("SET_WAVELENGTHS_ERROR", format!("cross disperser {xd:?}"));
                return Ok(false);
            }
        }
    }
    job.hdr.set("WAVECNTR", w[0], "Wave Center");
    job.hdr.set("WAVEBLUE", w[1], "Wave Blue");
    job.hdr.set("WAVERED", w[2], "Wave Red");
    Ok(true)
}

/// INSTSTAT: 1 good, 0 abnormal, −1 keywords missing.
pub fn instrument_status(h: &Header) -> i64 {
    let dark = matches!(h.lower("IMAGETYP").as_str(), "bias" | "dark");
    let cal = ["CAFCAL", "COFCAL", "DECKCAL", "ECHCAL", "FIL1CAL", "FIL2CAL", "LFILCAL", "LSELCAL", "SLITCAL", "TVACAL", "TVFCAL", "TVF1CAL", "TVF2CAL", "XDCAL", "TEMPDET"];
    if cal.iter().any(|k| !h.raw(k).is_some_and(usable)) {
        return -1;
    }
    if cal.iter().filter(|k| **k != "TEMPDET").any(|k| h.raw(k).is_some_and(|v| is_zero(v) || matches!(v, Value::Logical(false)))) {
        return 0;
    }
    let num = |k: &str| raw_num(h, k);
    for cover in ["C1CV", "C2CV", "ECOV", "XCOV"] {
        let (o, c) = (num(&format!("{cover}OPEN")), num(&format!("{cover}CLOS")));
        if o.is_none() || c.is_none() {
            return -1;
        }
        if !(o == Some(1.0) && c == Some(0.0)) && !dark {
            return 0;
        }
    }
    if ["XDISPERS", "BCCVOPEN", "BCCVCLOS", "RCCVOPEN", "RCCVCLOS"].iter().any(|k| !h.raw(k).is_some_and(usable)) {
        return -1;
    }
    if h.text("XDISPERS").unwrap_or_default().trim() == "RED" {
        if !(num("RCCVOPEN") == Some(1.0) && num("RCCVCLOS") == Some(0.0)) && !dark {
            return 0;
        }
        if num("HATOPEN").is_none() || num("HATCLOS").is_none() {
            return -1;
        }
    } else if !(num("HATOPEN") == Some(1.0) && num("HATCLOS") == Some(0.0)) && h.lower("IMAGETYP") == "object" {
        return 0;
    }
    1
}

fn set_instr_status(job: &mut Job) -> StepResult {
    let s = instrument_status(&job.hdr);
    job.hdr.set("INSTSTAT", s, "KOA: HIRES instrument status");
    Ok(true)
}

fn set_image_stats(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let (bx, _) = binning(h);
    let (precol, postpix) = (h.raw_f64("PRECOL").unwrap_or(0.0) / bx, h.raw_f64("POSTPIX").unwrap_or(0.0) / bx);
    let nx = (postpix - postpix / 3.0).min(15.0);
    let ny = nx;
    let mut vals: Vec<(usize, Option<[Option<f64>; 3]>, Option<[Option<f64>; 3]>)> = Vec::new();
    for e in 1..=6usize {
        if e >= job.hdr.len() || !job.hdr.has_array(e) {
            vals.push((e, None, None));
            continue;
        }
        let (Some(n1), Some(n2)) = (job.hdr.raw_f64_ext(e, "NAXIS1"), job.hdr.raw_f64_ext(e, "NAXIS2")) else {
            vals.push((e, None, None));
            continue;
        };
        // the reference rotates the data 90° clockwise: its (x, y) is column x, row NAXIS2−1−y
        let nxi = n1 - postpix - precol;
        let px1 = precol + nxi - 1.0;
        let (cxi, cyi, cxp) = (precol + nxi / 2.0, n2 / 2.0, px1 + postpix / 2.0);
        // box bounds are truncated to integers in the rotated frame first
        // (Python's int()), then y maps to rows NAXIS2−1−y: rows [n2−yb, n2−ya)
        let region = |x0: f64, y0: f64| {
            let (n1, n2) = (n1 as i64, n2 as i64);
            let (xa, xb) = (((x0 - nx / 2.0) as i64).max(0), ((x0 + nx / 2.0) as i64).min(n1));
            let (ya, yb) = (((y0 - ny / 2.0) as i64).max(0), ((y0 + ny / 2.0) as i64).min(n2));
            let (r0, r1) = (n2 - yb, n2 - ya);
            Region { x0: xa as u32, y0: r0 as u32, nx: (xb - xa).max(1) as u32, ny: (r1 - r0).max(1) as u32 }
        };
        let stats = |r: Region| job.host.image_stats(e as u32, Some(r), None).ok().map(|s| common::stat_values(s.mean, s.std, s.median));
        vals.push((e, stats(region(cxi, cyi)), stats(region(cxp, 0.03 * n2))));
    }
    for (e, im, pt) in vals {
        for (pre, v, what) in [("IM", im, "Image"), ("PT", pt, "Postscan")] {
            let [mn, sd, md] = v.unwrap_or([None; 3]);
            job.hdr.set(&format!("{pre}01MN{e:02}"), mn, &format!("KOA: {what} data mean"));
            job.hdr.set(&format!("{pre}01SD{e:02}"), sd, &format!("KOA: {what} data standard deviation"));
            job.hdr.set(&format!("{pre}01MD{e:02}"), md, &format!("KOA: {what} data median"));
        }
    }
    Ok(true)
}

fn set_npixsat(job: &mut Job) -> StepResult {
    let exts = common::image_extensions(job);
    common::set_npixsat(job, Some(65535.0), &exts)
}

fn set_sig2nois(job: &mut Job) -> StepResult {
    let e = job.hdr.len() / 2;
    if !job.hdr.has_array(e) {
        return Ok(true);
    }
    let h = &job.hdr;
    let amp = h.text("AMPMODE").unwrap_or_default();
    let numamps = if amp.contains("DUAL:A+B") { 2.0 } else if amp.trim().is_empty() { 0.0 } else { 1.0 };
    let rows = job.host.open_image(e as u32).map_err(Fail)?;
    let (cols, nrows) = rows.shape();
    let nx = nrows as f64 - numamps * (h.raw_f64("PRECOL").unwrap_or(0.0) + h.raw_f64("POSTPIX").unwrap_or(0.0));
    let r = (1.17 * nx / 2.0) as i64;
    if r < 10 || r - 10 >= nrows as i64 || cols < 21 {
        job.hdr.set("SIG2NOIS", Value::Text("null".into()), "KOA: S/N estimate near image spectral center");
        return Ok(true);
    }
    // rows [r−10, r+10), cut at the last row as NumPy slices
    let n = 20i64.min(nrows as i64 - (r - 10)) as u32;
    let band = rows.read_rows((r - 10) as u32, n).map_err(Fail)?;
    let medians: Vec<f64> = (10..cols as usize - 10).map(|i| median((0..n as usize).map(|y| band[y * cols as usize + i] as f64).collect())).collect();
    // NumPy's max/min propagate a NaN median: then SIG2NOIS is null
    let v = (!medians.iter().any(|m| m.is_nan())).then(|| {
        let (lo, hi) = medians.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), m| (lo.min(*m), hi.max(*m)));
        (hi - lo).abs().sqrt().trunc()
    });
    job.hdr.set("SIG2NOIS", v, "KOA: S/N estimate near image spectral center");
    Ok(true)
}

/// `np.median`: the middle value, or the mean of the two middle ones; NaN
/// when any value is NaN.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() || v.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

/// Decker → (length, width); `None` width = the slit width.
pub fn decker(name: &str) -> Option<(f64, Option<f64>)> {
    const A: &[(&str, f64)] = &[
        ("A1", 0.3), ("A2", 0.5), ("A3", 0.75), ("A4", 1.0), ("A5", 1.36), ("A6", 1.5), ("A7", 2.0), ("A8", 2.5), ("A9", 3.0), ("A10", 4.0),
        ("A11", 5.0), ("A12", 10.0), ("A13", 20.0), ("A14", 40.0), ("A15", 80.0),
    ];
    const W: &[(&str, f64, f64)] = &[
        ("B1", 3.5, 0.574), ("B2", 7.0, 0.574), ("B3", 14.0, 0.574), ("B4", 28.0, 0.574), ("B5", 3.5, 0.861), ("C1", 7.0, 0.861), ("C2", 14.0, 0.861),
        ("C3", 28.0, 0.861), ("C4", 3.5, 1.148), ("C5", 7.0, 1.148), ("D1", 14.0, 1.148), ("D2", 28.0, 1.148), ("D3", 7.0, 1.722), ("D4", 14.0, 1.722),
        ("D5", 0.119, 0.179), ("E1", 1.0, 0.4), ("E2", 3.0, 0.4), ("E3", 5.0, 0.4), ("E4", 7.0, 0.4), ("E5", 1.0, 0.4),
    ];
    A.iter().find(|a| a.0 == name).map(|a| (a.1, None)).or_else(|| W.iter().find(|w| w.0 == name).map(|w| (w.1, Some(w.2))))
}

fn set_slit_values(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let (bx, by) = binning(h);
    let (spat, disp) = (0.1194 * bx, 0.1794 * by);
    let s = h.f64("SLITWID").map(|w| w / 0.7235);
    let (mut len, mut wid, mut res) = (None, None, None);
    if let Some((l, w)) = decker(h.text("DECKNAME").unwrap_or_default().trim()) {
        if let Some(w) = w.or(s) {
            let r = 5019.5 / ((w / disp) * 0.0219 * by);
            res = Some((r - floor_mod(r, 100.0)) as i64);
            len = Some(round_to(l, 3));
            wid = Some(round_to(w, 3));
        }
    }
    job.hdr.set("SLITLEN", len, "KOA: Slit length projected on sky (arcsec)");
    job.hdr.set("SLITWIDT", wid, "KOA: Slit width projected on sky (arcsec)");
    job.hdr.set("SPECRES", res, "KOA: Nominal spectral resolution");
    job.hdr.set("SPATSCAL", round_to(spat, 3), "KOA: CCD pixel scale (arcsec/pixel)");
    job.hdr.set("DISPSCAL", round_to(disp, 3), "KOA: CCD pixel scale, dispersion (arcsec/pixel)");
    Ok(true)
}

const GAIN: [[f64; 6]; 2] = [[1.20, 1.95, 1.13, 2.09, 1.26, 2.09], [0.48, 0.78, 0.45, 0.84, 0.50, 0.89]];
const RN: [[f64; 6]; 2] = [[2.20, 2.90, 2.50, 3.00, 2.90, 3.10], [2.00, 2.34, 2.50, 2.40, 2.60, 2.84]];

fn set_gain_and_rn(job: &mut Job) -> StepResult {
    let g = match job.hdr.text("CCDGAIN").unwrap_or_default().trim() {
        "low" => Some(0),
        "high" => Some(1),
        _ => None,
    };
    for e in 1..=6usize {
        let amp = (e < job.hdr.len())
            .then(|| job.hdr.raw_text_ext(e, "AMPLOC"))
            .flatten()
            .and_then(|a| a.trim().parse::<usize>().ok())
            .filter(|a| (1..=6).contains(a));
        let (gain, rn) = match (g, amp) {
            (Some(g), Some(a)) => (Some(GAIN[g][a - 1]), Some(RN[g][a - 1])),
            _ => (None, None),
        };
        job.hdr.set(&format!("CCDGN0{e}"), gain, &format!("KOA: CCD gain extension {e}"));
        job.hdr.set(&format!("CCDRN0{e}"), rn, &format!("KOA: CCD read noise extension {e}"));
    }
    Ok(true)
}

fn set_skypa(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    if let (Some(a), Some(p), Some(e)) = (h.f64("IROT2ANG"), h.f64("PARANG"), h.f64("EL")) {
        job.hdr.set("SKYPA", round_to(floor_mod(2.0 * a + p + e + 270.0, 360.0), 4), "KOA: Position angle on sky (deg)");
    }
    Ok(true)
}

/// SUBEXP: false for a single exposure or the B,G,R mosaic read-out, true
/// when the exposure was split (the reference raised there).
pub fn subexp(h: &Header) -> bool {
    let t = h.f64("PEXPTIME").unwrap_or(0.0);
    let el = h.f64("PEXPELAP").unwrap_or(0.0);
    if t == 0.0 && el == 0.0 {
        return false;
    }
    let era = h.text("ERAMODE").unwrap_or_default();
    !(era == h.text("MOSMODE").unwrap_or_default() && era.replace(' ', "") == "B,G,R")
}

fn set_subexp(job: &mut Job) -> StepResult {
    let v = if subexp(&job.hdr) { "True" } else { "False" };
    job.hdr.set("SUBEXP", v, "KOA: Sub-exposure");
    Ok(true)
}

impl Instrument for Hires {
    const KEYMAP: KeyMap = &[("OFNAME", &["OUTFILE"])];

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        Ok(job.hdr.lower("INSTRUME").contains("hires").then(|| "HI".to_string()))
    }

    fn has_target_info(_job: &mut Job) -> bool {
        false
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_ut", common::set_ut),
            crit("set_utend", set_utend),
            crit("set_ofName", common::set_ofname_outfile),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            crit("fix_propint", fix_propint),
            opt("fix_binning", fix_binning),
            opt("set_wavelengths", set_wavelengths),
            opt("set_instr_status", set_instr_status),
            opt("set_weather", common::set_weather),
            opt("set_image_stats", set_image_stats),
            opt("set_npixsat", set_npixsat),
            opt("set_sig2nois", set_sig2nois),
            opt("set_slit_values", set_slit_values),
            opt("set_gain_and_rn", set_gain_and_rn),
            opt("set_skypa", set_skypa),
            opt("set_subexp", set_subexp),
            opt("set_roqual", |j| Ok(j.hdr.set("ROQUAL", "Good", "KOA: Postscan row quality") || true)),
            opt("set_oa", common::set_oa),
            opt("set_dqa_date", common::set_dqa_date),
            opt("set_dqa_vers", common::set_dqa_vers),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
        ]
    }

    /// One JPEG per CCD extension: zscale + asinh, turned 90° counter-clockwise,
    /// width half the data rows, `<KOAID>_CCD<e>_HDU<ee>.jpg`.
    fn preview_plan(_ctx: &Context, hdr: &Header) -> Vec<Preview> {
        (1..hdr.len())
            .filter_map(|e| {
                let (_, rows) = koa_sdk::preview::image_size(hdr, e)?;
                let mut p = koa_sdk::preview::single(e, hdr, koa_sdk::types::Scaling::ZscaleAsinh, 75, &format!("_CCD{e}_HDU{e:02}"))?;
                p.rotate = Rotation::Ccw90;
                p.width = Some((rows / 2).max(1));
                Some(p)
            })
            .collect()
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Hires);

#[cfg(test)]
mod tests;
