//! LRIS red and blue arms (spec instruments.md §8): key map OFNAME→OUTFILE,
//! prefixes LB/LR, the KOAIMTYP decision tree, observing mode, wavelength
//! tables (filters, gratings, grisms, dichroic cut), slit dimensions and
//! resolution, blue-arm imaging WCS per extension, sky PA, saturation over
//! the CCD extensions, DATE-BEG/MJD-OBS metadata; histogram-equalised red
//! previews and the blue 4-amplifier mosaic.
//!
//! Reference defects fixed (#35): blue arc lamps no longer crash the
//! critical KOAIMTYP step (GRISNAME ≠ clear → arclamp, as intended); the
//! grating-table date cut reads the month, not the minutes (old table before
//! 2015-05-14); an unknown dichroic no longer forces the blue arm's red end
//! to 0; image statistics really run (the reference's type test skipped every
//! extension): per CCD extension and amplifier, `IM0<ccd>MN0<amp>`/`SD`/`MD`
//! of the imaging pixels and `PT0<ccd>…` of the post-scan, no IMAGE* keywords.
//! Level 1 has no DRP products (PypeIt defines none; level 2 is PypeIt).
//! As the reference: the WCS RA is converted as astropy's SkyCoord does
//! (hours × 14.999999999999998).

use koa_sdk::common;
use koa_sdk::coords::{dec_degrees, ra_degrees_skycoord};
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::koaid::instr_token;
use koa_sdk::preview::{MosaicSpec, mosaic};
use koa_sdk::pyfmt::{floor_mod, round_int, round_tens, round_to};
use koa_sdk::types::{Context, Preview, Region, Scaling, Value};
use koa_sdk::value::{to_text, truthy, usable};
use koa_sdk::{Header, Instrument, KeyMap, program, drp};

pub struct Lris;

/// Which arm a header belongs to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arm {
    Red,
    Blue,
}

pub fn arm(hdr: &Header) -> Option<Arm> {
    match hdr.text("INSTRUME").unwrap_or_default().trim() {
        "LRIS" | "LRISp" | "LRISpRED" => Some(Arm::Red),
        "LRISBLUE" | "LRISpBLUE" => Some(Arm::Blue),
        _ => None,
    }
}

fn on(hdr: &Header, k: &str) -> bool {
    hdr.lower(k) == "on"
}

/// The KOAIMTYP decision tree (spec §8).
pub fn koaimtyp(hdr: &Header) -> &'static str {
    let arm = arm(hdr);
    if hdr.text("SLITNAME").as_deref() == Some("GOH_LRIS") || ["rfoc", "bfoc"].contains(&hdr.text("OUTFILE").unwrap_or_default().as_str()) {
        return "focus";
    }
    if hdr.f64("ELAPTIME") == Some(0.0) {
        return "bias";
    }
    let dispersed = || match arm {
        Some(Arm::Red) => hdr.text("GRANAME").as_deref() != Some("mirror"),
        Some(Arm::Blue) => hdr.text("GRISNAME").as_deref() != Some("clear"),
        None => false,
    };
    match hdr.lower("TRAPDOOR").as_str() {
        "open" => {
            if ["FLIMAGIN", "FLSPECTR", "FLAMP1", "FLAMP2"].iter().any(|k| on(hdr, k)) {
                return "flatlamp";
            }
            if hdr.get("AUTOSHUT").is_some_and(|v| truthy(v) && !matches!(to_text(v).to_lowercase().as_str(), "false" | "0" | "f")) {
                return if ["ir", "hnpb", "uv"].contains(&hdr.lower("CALNAME").as_str()) { "polcal" } else { "object" };
            }
            match hdr.lower("AXESTAT").as_str() {
                "tracking" | "slewing" => "object",
                "in position" => {
                    let obj = hdr.text("OBJECT").unwrap_or_default().to_lowercase().replace([' ', '-', '_'], "").replace("flats", "flat");
                    if ["twiflat", "twilightflat", "skyflat"].contains(&obj.as_str()) { "object" } else { "undefined" }
                }
                _ => "undefined",
            }
        }
        "closed" => {
            let lamps = hdr.text("LAMPS").unwrap_or_default().trim().to_string();
            if !lamps.is_empty() && lamps != "0" && lamps.to_lowercase() != "none" {
                if lamps.contains('1') {
                    if lamps == "0,0,0,0,0,1" {
                        "flatlamp"
                    } else if dispersed() {
                        "arclamp"
                    } else {
                        "undefined"
                    }
                } else if lamps == "0,0,0,0,0,0" {
                    "dark"
                } else {
                    "undefined"
                }
            } else if on(hdr, "HALOGEN") {
                "flatlamp"
            } else if ["NEON", "ARGON", "CADMIUM", "ZINC", "KRYPTON", "XENON", "FEARGON", "DEUTERI"].iter().any(|k| on(hdr, k)) {
                if dispersed() { "arclamp" } else { "undefined" }
            } else if ["NEON", "ARGON", "CADMIUM", "ZINC", "HALOGEN", "KRYPTON", "XENON", "FEARGON", "DEUTERI"].iter().all(|k| hdr.lower(k) == "off") {
                "dark"
            } else {
                "undefined"
            }
        }
        _ => "undefined",
    }
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(&job.hdr);
    common::record_koaimtyp(job, t, "could not determine the image type")
}

fn set_elaptime(job: &mut Job) -> StepResult {
    if job.hdr.raw("ELAPTIME").is_some_and(usable) {
        return Ok(true);
    }
    let v = job.hdr.raw_f64("XPOSURE").or_else(|| job.hdr.raw_f64("TTIME")).map(round_int);
    job.hdr.set("ELAPTIME", v, "KOA: Total integration time");
    Ok(true)
}

fn set_ofname(job: &mut Job) -> StepResult {
    if job.hdr.raw("OFNAME").is_some_and(usable) {
        return Ok(true);
    }
    common::set_ofname_outfile(job)
}

fn get_nexten(job: &mut Job) -> StepResult {
    let n = job.hdr.len() as i64 - 1;
    job.vars.insert("nexten", Value::Int(n));
    Ok(true)
}

fn imaging(hdr: &Header) -> bool {
    match arm(hdr) {
        Some(Arm::Blue) => {
            let g = hdr.text("GRISNAME").unwrap_or_default();
            g.contains("cl") || g.contains("NB")
        }
        _ => hdr.text("GRANAME").as_deref() == Some("mirror"),
    }
}

fn set_obsmode(job: &mut Job) -> StepResult {
    let m = if imaging(&job.hdr) { "IMAGING" } else { "SPEC" };
    job.hdr.set("OBSMODE", m, "KOA: Observation Mode (Imaging or Spec)");
    Ok(true)
}

const RED_FILTERS: &[(&str, f64, f64)] = &[
    ("clear", 3500.0, 9000.0), ("B", 3800.0, 5300.0), ("V", 4800.0, 6600.0), ("R", 5500.0, 8200.0), ("Rs", 6000.0, 7500.0),
    ("I", 6800.0, 8400.0), ("GG495", 4800.0, 4950.0), ("OG570", 5500.0, 5700.0), ("RG850", 8200.0, 8500.0), ("NB4000", 3800.0, 4200.0),
    ("NB5390", 5350.0, 5400.0), ("NB6741", 6700.0, 6800.0), ("NB8185", 8150.0, 8250.0), ("NB8560", 8500.0, 8650.0), ("NB9135", 9100.0, 9200.0),
    ("NB9148", 9050.0, 9250.0), ("NB4325", 9050.0, 9520.0),
];
const BLUE_FILTERS: &[(&str, f64, f64)] =
    &[("clear", 3000.0, 6500.0), ("U", 3050.0, 4000.0), ("B", 3900.0, 4900.0), ("V", 5800.0, 6600.0), ("G", 4100.0, 5300.0), ("SP580", 0.0, 0.0), ("NB4170", 0.0, 0.0)];
const RED_GRATINGS_NEW: &[(&str, f64)] = &[
    ("150/7500", 12288.0), ("300/5000", 6525.0), ("400/8500", 4762.0), ("600/5000", 3275.0), ("600/7500", 3275.0),
    ("600/10000", 3275.0), ("831/8200", 2375.0), ("900/5500", 2175.0), ("1200/7500", 1638.0), ("1200/9000", 1638.0),
];
const RED_GRATINGS_OLD: &[(&str, f64)] = &[
    ("150/7500", 9830.0), ("158/8500", 9830.0), ("300/5000", 5220.0), ("400/8500", 3810.0), ("600/5000", 2620.0),
    ("600/7500", 2620.0), ("600/10000", 2620.0), ("831/8200", 1900.0), ("900/5500", 1740.0), ("1200/7500", 1310.0),
];
const BLUE_GRISMS_LONG: &[(&str, f64, f64)] = &[("300/5000", 1570.0, 7420.0), ("400/3400", 1270.0, 5740.0), ("600/4000", 3010.0, 5600.0), ("1200/3400", 2910.0, 3890.0)];
const BLUE_GRISMS_MASK: &[(&str, f64, f64)] = &[("300/5000", 2210.0, 8060.0), ("400/3400", 1760.0, 6220.0), ("600/4000", 3300.0, 5880.0), ("1200/3400", 3010.0, 4000.0)];

/// Dichroic cut (Å) from DICHNAME; `None` for an unknown dichroic.
pub fn dichroic_cut(name: &str) -> Option<f64> {
    [("460", 4874.0), ("500", 5091.0), ("560", 5696.0), ("680", 6800.0)].iter().find(|(k, _)| name.contains(k)).map(|(_, v)| *v)
}

/// Whether DATE-OBS is before the 2015-05-14 grating-table change
/// (defect #35: the reference parsed the month as minutes).
pub fn old_grating_table(date_obs: &str) -> bool {
    date_obs.get(..10).is_some_and(|d| d < "2015-05-14")
}

/// (blue, red) wavelength range before the dichroic cut.
pub fn wavelength_range(hdr: &Header) -> Option<(f64, f64)> {
    let arm = arm(hdr)?;
    let find3 = |t: &[(&str, f64, f64)], k: &str| t.iter().find(|(n, _, _)| *n == k).map(|(_, b, r)| (*b, *r));
    if imaging(hdr) {
        let key = if arm == Arm::Red { "REDFILT" } else { "BLUFILT" };
        let f = hdr.text(key).unwrap_or_default().trim().replace("Clear", "clear");
        return find3(if arm == Arm::Red { RED_FILTERS } else { BLUE_FILTERS }, &f);
    }
    match arm {
        Arm::Red => {
            let wl = hdr.f64("WAVELEN")?;
            let old = old_grating_table(&hdr.text("DATE-OBS").unwrap_or_default());
            let g = hdr.text("GRANAME").unwrap_or_default();
            let t = if old { RED_GRATINGS_OLD } else { RED_GRATINGS_NEW };
            t.iter().find(|(n, _)| *n == g.trim()).map(|(_, w)| (wl - w / 2.0, wl + w / 2.0))
        }
        Arm::Blue => {
            let mask = hdr.text("SLITMASK").unwrap_or_default();
            let long = mask.contains("long_") || mask.contains("pol_");
            find3(if long { BLUE_GRISMS_LONG } else { BLUE_GRISMS_MASK }, hdr.text("GRISNAME").unwrap_or_default().trim())
        }
    }
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let Some((mut blue, mut red)) = wavelength_range(&job.hdr) else {
        job.log("no wavelength entry for this setup");
        return Ok(true);
    };
    if let Some(cut) = dichroic_cut(&job.hdr.text("DICHNAME").unwrap_or_default()) {
        match arm(&job.hdr) {
            Some(Arm::Red) => blue = blue.max(cut),
            _ => red = red.min(cut),
        }
    }
    let tens = |x: f64| round_tens(x, 1) as i64;
    job.hdr.set("WAVERED", tens(red), "KOA: Red wavelength");
    job.hdr.set("WAVEBLUE", tens(blue), "KOA: Blue wavelength");
    job.hdr.set("WAVECNTR", round_int((blue + red) / 2.0), "KOA: Center wavelength");
    Ok(true)
}

fn set_sig2nois(job: &mut Job) -> StepResult {
    job.hdr.set("SIG2NOIS", Value::Text("null".into()), "KOA: S/N estimate near image spectral center");
    Ok(true)
}

const SLITS: &[(&str, f64, f64)] =
    &[("long_0.7", 175.0, 0.7), ("long_1.0", 175.0, 1.0), ("long_1.5", 175.0, 1.5), ("long_8.7", 175.0, 8.7), ("pol_1.0", 25.0, 1.0), ("pol_1.5", 25.0, 1.5)];
const RED_DISP: &[(&str, f64, f64)] = &[
    ("150/7500", 3.00, 0.0), ("300/5000", 0.0, 9.18), ("400/8500", 1.16, 6.90), ("600/5000", 0.80, 4.70), ("600/7500", 0.80, 4.70),
    ("600/10000", 0.80, 4.70), ("831/8200", 0.58, 0.0), ("900/5500", 0.53, 0.0), ("1200/7500", 0.40, 0.0), ("1200/9000", 0.40, 0.0),
];
const BLUE_DISP: &[(&str, f64, f64)] = &[("300/5000", 1.43, 8.80), ("400/3400", 1.09, 6.80), ("600/4000", 0.63, 3.95), ("1200/3400", 0.24, 1.56)];

fn set_slit_dims(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let slitname = h.text("SLITNAME").unwrap_or_default();
    if ["GOH_LRIS", "direct"].contains(&slitname.trim()) {
        return Ok(true);
    }
    let slit = SLITS.iter().find(|(n, _, _)| *n == slitname.trim());
    let (len, width) = (slit.map(|s| s.1), slit.map(|s| s.2));
    let (table, key) = match arm(h) {
        Some(Arm::Blue) => (BLUE_DISP, "GRISNAME"),
        _ => (RED_DISP, "GRANAME"),
    };
    let g = h.text(key).unwrap_or_default();
    let (disp, fwhm) = table.iter().find(|(n, _, _)| *n == g.trim()).map(|(_, d, f)| (*d, *f)).unwrap_or((0.0, 0.0));
    let s = width.unwrap_or(1.0);
    let mut specres = None;
    if let Some(wave) = h.f64("WAVECNTR") {
        if disp != 0.0 {
            specres = Some(round_tens(wave / (disp * s / 0.135), 1));
        }
        if fwhm != 0.0 {
            specres = Some(round_tens(wave / fwhm / s, 2));
        }
    }
    job.hdr.set("SLITLEN", len, "KOA: Slit length");
    job.hdr.set("SLITWIDT", width, "KOA: Slit width");
    job.hdr.set("SPECRES", specres, "KOA: Spectral resolution");
    job.hdr.set("SPATSCAL", 0.135, "KOA: Spatial resolution");
    job.hdr.set("DISPSCAL", disp, "KOA: Dispersion scale");
    Ok(true)
}

/// Pick-off mirror positions (x_im, y_im) by PONAME.
pub fn pickoff(name: &str) -> (f64, f64) {
    match name {
        "REF" => (380.865, 71.44),
        "REFO" => (-377.22, 72.52),
        "LRIS" => (3.97, -309.82),
        "slitb" => (-14.41, -263.74),
        "slitc" => (31.85, -262.58),
        "POL" => (3.91, -273.12),
        "LRISB" => (-53.11, -310.54),
        "PICKOFF" => (27.95, -260.63),
        "MIRA" => (3.67, -300.34),
        "BEDGE" => (20.25, -260.68),
        "TEDGE" => (-0.65, -263.68),
        _ => (-53.11, -320.54),
    }
}

fn set_wcs(job: &mut Job) -> StepResult {
    if arm(&job.hdr) != Some(Arm::Blue) || !imaging(&job.hdr) {
        return Ok(true);
    }
    // the reference converts with astropy's SkyCoord (RA in hours)
    let (Some(ra), Some(dec)) = (job.hdr.get("RA").and_then(ra_degrees_skycoord), job.hdr.get("DEC").and_then(dec_degrees)) else {
        job.log("RA/DEC not usable: no WCS");
        return Ok(true);
    };
    let poname = job.hdr.text("PONAME").unwrap_or_default();
    let (x_im, y_im) = pickoff(poname.trim());
    let (xcen, ycen) = match poname.trim() {
        "REF" => (485.0, 520.0),
        "REFO" => (512.0, 512.0),
        _ => ((y_im + 308.1) / 0.135 + 1024.0, (3.4 - x_im) / 0.135 + 1024.0),
    };
    let rot = job.hdr.f64("ROTPOSN");
    for ext in 1..job.hdr.len() {
        let g = |k: &str| job.hdr.raw_f64_ext(ext, k);
        let (Some(cd11), Some(cd22)) = (g("CD1_1"), g("CD2_2")) else { continue };
        let (crpix1, crpix2) = (g("CRPIX1").unwrap_or(0.0), g("CRPIX2").unwrap_or(0.0));
        let (crval1, crval2) = (g("CRVAL1").unwrap_or(0.0), g("CRVAL2").unwrap_or(0.0));
        let h = &mut job.hdr;
        h.set_ext(ext, "CRPIX1", crpix1 + (xcen - crval1) / cd11, "KOA: CRPIX1");
        h.set_ext(ext, "CRPIX2", crpix2 + (ycen - crval2) / cd22, "KOA: CRPIX2");
        h.set_ext(ext, "CDELT1", cd11 * 0.135, "KOA: CDELT1");
        h.set_ext(ext, "CDELT2", cd22 * 0.135, "KOA: CDELT2");
        h.set_ext(ext, "CTYPE1", "RA---TAN", "KOA: CTYPE1");
        h.set_ext(ext, "CTYPE2", "DEC--TAN", "KOA: CTYPE2");
        h.set_ext(ext, "CROTA2", rot, "KOA: Rotator position");
        h.set_ext(ext, "CRVAL1", ra, "KOA: CRVAL1");
        h.set_ext(ext, "CRVAL2", dec, "KOA: CRVAL2");
    }
    Ok(true)
}

/// SKYPA from the rotator (as HIRES): (2·IROT2ANG + PARANG + EL + 270) mod 360.
pub fn set_skypa(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    if let (Some(a), Some(p), Some(e)) = (h.f64("IROT2ANG"), h.f64("PARANG"), h.f64("EL")) {
        job.hdr.set("SKYPA", round_to(floor_mod(2.0 * a + p + e + 270.0, 360.0), 4), "KOA: Position angle on sky (deg)");
    }
    Ok(true)
}

/// The reference's statistics boxes of one CCD extension, in the
/// transposed frame (x = column, y = row), bounds inclusive: the imaging
/// pixels' centre and the post-scan's, `nx` × `nx` with nx := POSTPIX/bx −
/// (POSTPIX/bx)/3 (15 when above 15 or 0); integer division throughout.
pub fn stat_boxes(precol: i64, postpix: i64, xbin: i64, naxis1: i64, naxis2: i64) -> [(i64, i64, i64, i64); 2] {
    let (pre, post) = (precol.div_euclid(xbin), postpix.div_euclid(xbin));
    let mut nx = post - post.div_euclid(3);
    if nx > 15 || nx == 0 {
        nx = 15;
    }
    let half = nx.div_euclid(2);
    let nxi = naxis1 - post - pre;
    let px1 = pre + nxi - 1;
    let (cxi, cyi, cxp) = (pre + nxi.div_euclid(2), naxis2.div_euclid(2), px1 + post.div_euclid(2));
    [(cxi - half, cxi + half, cyi - half, cyi + half), (cxp - half, cxp + half, cyi - half, cyi + half)]
}

/// Per CCD extension: mean, standard deviation and median (2 decimals) of the
/// imaging and post-scan boxes ([`stat_boxes`]) as `IM0<ccd>MN0<amp>`, … and
/// `PT0<ccd>MN0<amp>`, … with ccd := CCDLOC (+1 on the blue arm) and amp :=
/// AMPLOC (an extension without them is skipped; the reference raised).
/// PRECOL, POSTPIX, BINNING or an extension's NAXIS1/2 missing ends the step.
fn set_image_stats(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let (Some(precol), Some(postpix), Some(binning)) = (h.i64("PRECOL"), h.i64("POSTPIX"), h.text("BINNING")) else {
        job.log("PRECOL, POSTPIX or BINNING missing: no statistics");
        return Ok(true);
    };
    let xbin = if binning.contains(',') { h.binning().0 as i64 } else { 1 };
    let blue = arm(h) == Some(Arm::Blue);
    for ext in common::image_extensions(job) {
        let e = ext as usize;
        let (Some(naxis1), Some(naxis2)) = (job.hdr.raw_i64_ext(e, "NAXIS1"), job.hdr.raw_i64_ext(e, "NAXIS2")) else {
            job.log(&format!("HDU {ext}: NAXIS1/NAXIS2 missing"));
            return Ok(true);
        };
        let (Some(ccdloc), Some(amp)) = (job.hdr.raw_i64_ext(e, "CCDLOC"), job.hdr.raw_i64_ext(e, "AMPLOC")) else {
            job.log(&format!("HDU {ext}: no CCDLOC/AMPLOC to name its statistics"));
            continue;
        };
        let ccd = ccdloc + blue as i64;
        let boxes = stat_boxes(precol, postpix, xbin, naxis1, naxis2);
        for ((x1, x2, y1, y2), (pre, what)) in boxes.into_iter().zip([("IM", "Imaging"), ("PT", "Postscan")]) {
            let (x0, y0) = (x1.max(0), y1.max(0));
            let (nx, ny) = (x2.min(naxis1 - 1) - x0 + 1, y2.min(naxis2 - 1) - y0 + 1);
            let [mn, sd, md] = if nx > 0 && ny > 0 {
                let region = Region { x0: x0 as u32, y0: y0 as u32, nx: nx as u32, ny: ny as u32 };
                let s = job.host.image_stats(ext, Some(region), None).map_err(Fail)?;
                common::stat_values(s.mean, s.std, s.median)
            } else {
                [None; 3]
            };
            let at = format!("CCD {ccd}, amp location {amp}");
            job.hdr.set(&format!("{pre}0{ccd}MN0{amp}"), mn, &format!("KOA: {what} mean {at}"));
            job.hdr.set(&format!("{pre}0{ccd}SD0{amp}"), sd, &format!("KOA: {what} standard deviation {at}"));
            job.hdr.set(&format!("{pre}0{ccd}MD0{amp}"), md, &format!("KOA: {what} median {at}"));
        }
    }
    Ok(true)
}

fn set_npixsat(job: &mut Job) -> StepResult {
    let exts = common::image_extensions(job);
    common::set_npixsat(job, Some(65535.0), &exts)
}

fn fix_datebeg(job: &mut Job) -> StepResult {
    for (key, meta) in [("DATE-BEG", "DATE_BEG"), ("DATE-END", "DATE_END")] {
        if let Some(t) = job.hdr.text(key) {
            if koa_sdk::time::parse_timestamp(&t).is_some() {
                job.set_extra(meta, t);
            }
        }
    }
    Ok(true)
}

fn set_mjd_obs(job: &mut Job) -> StepResult {
    if !job.hdr.raw("MJD-OBS").is_some_and(usable) {
        if let Some(m) = job.hdr.raw("MJD").filter(|v| usable(v)).cloned() {
            job.set_extra("MJD-OBS", m);
        }
    }
    Ok(true)
}

impl Instrument for Lris {
    const KEYMAP: KeyMap = &[("OFNAME", &["OUTFILE"])];
    /// PypeIt level 2 only (the reference's level-1 PypeIt list is empty).
    const DRP: drp::Rules = drp::Rules { level1: drp::Rule::None, level2: drp::Rule::PypeIt };
    const KEYSKIPS: &'static [&'static str] = &["CCDGN00", "CCDRN00"];

    fn set_instr(job: &mut Job) -> StepResult {
        if arm(&job.hdr).is_some() {
            return Ok(true);
        }
        let i = job.hdr.text("INSTRUME").unwrap_or_default();
        job.error("SET_INSTR_ERROR", i);
        Ok(false)
    }

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        Ok(match instr_token(job).as_str() {
            "lrisblue" | "lrispblue" => Some("LB".into()),
            "lris" | "lrispred" | "lrisp" => Some("LR".into()),
            _ => None,
        })
    }

    fn has_target_info(job: &mut Job) -> bool {
        job.hdr.text("SLITNAME").filter(|s| !s.trim().is_empty()).is_some_and(|s| {
            let s = s.to_lowercase();
            !["long_", "pol_", "goh_", "direct"].iter().any(|k| s.contains(k))
        })
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_ut", common::set_ut),
            crit("set_elaptime", set_elaptime),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_ofName", set_ofname),
            crit("set_frameno", common::set_frameno),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            crit("get_nexten", get_nexten),
            opt("set_image_stats", set_image_stats),
            opt("set_weather", common::set_weather),
            opt("set_oa", common::set_oa),
            opt("set_npixsat", set_npixsat),
            opt("set_obsmode", set_obsmode),
            opt("set_wavelengths", set_wavelengths),
            opt("set_sig2nois", set_sig2nois),
            opt("set_ccdtype", |_| Ok(true)),
            opt("set_slit_dims", set_slit_dims),
            opt("set_wcs", set_wcs),
            opt("set_skypa", set_skypa),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("fix_datebeg", fix_datebeg),
            opt("set_mjd_obs", set_mjd_obs),
            opt("set_dqa_vers", common::set_dqa_vers),
            opt("set_dqa_date", common::set_dqa_date),
        ]
    }

    /// Red: histogram-equalised primary (or first CCD) image. Blue: the
    /// amplifier mosaic in one row, full size.
    fn preview_plan(ctx: &Context, hdr: &Header) -> Vec<Preview> {
        Self::preview_plan_checked(ctx, hdr).unwrap_or_default()
    }

    fn preview_plan_checked(_ctx: &Context, hdr: &Header) -> Result<Vec<Preview>, String> {
        match arm(hdr) {
            Some(Arm::Blue) => {
                // blue: any missing or unparsable DETSEC aborts the preview
                let spec = MosaicSpec::from_header(hdr, None, 1, true);
                Ok(mosaic(hdr, &spec, "")?.into_iter().collect())
            }
            _ => {
                let ext = if hdr.has_array(0) { 0 } else { (1..hdr.len()).find(|&e| hdr.has_array(e)).unwrap_or(0) };
                Ok(koa_sdk::preview::single(ext, hdr, Scaling::HistogramEqualize, 92, "").into_iter().collect())
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Lris);

#[cfg(test)]
mod tests;
