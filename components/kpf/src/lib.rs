//! KPF (spec instruments.md §7): key map UTC→UT, KOAID taken from OFNAME
//! (`KP.YYYYMMDD.SSSSS.HH`) with a validated fallback to the base algorithm,
//! instrument selection, elapsed time from ELAPSED or DATE-BEG/DATE-END,
//! KOAIMTYP from IMTYPE (SoCal → solar), program from PROGNAME/GRPROGNA/
//! RDPROGNA, wavelengths from the detectors in use; one preview per detector
//! (red, green, Ca H&K) with its amplifiers tiled, zscale + square root.
//!
//! As the reference: a KOAID already in the header is kept; UTC comes from
//! KPF's own `set_utc` (a usable UTC stays as it is, else UT is copied
//! verbatim, else the base rule), also for the base algorithm, which validates
//! INSTRUME first; `--progid` (the context's progid override) skips the
//! GRPROGNA/RDPROGNA fallback for PROGNAME.
//!
//! Reference defects fixed (#37): the `.fits` suffix of OFNAME is removed as
//! a suffix (the reference stripped the characters `.fits` as a set, so
//! `….52.fits.fits`, `….52.fit` or `….52s` passed as KOAIDs); the
//! DATE-BEG/DATE-END difference keeps its days and fractions; an unknown
//! image type is reported with KOAIMTYP_UDF.

use std::path::{Path, PathBuf};

use koa_sdk::common;
use koa_sdk::drp::{self, Listing, product, swap_component};
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::pyfmt::round_int;
use koa_sdk::types::{Context, DrpProduct, DrpRequest, Preview, Region, Rotation, Scaling, Tile};
use koa_sdk::value::{to_text, usable};
use koa_sdk::{Header, Instrument, KeyMap, Koaid, koaid, program};

pub struct Kpf;

/// The folders of KPF's DRP products: the L1 folder (the row's stage file)
/// and at level 2 its L2 and logs siblings; and at level 2 the quick-look
/// folder `QLP/<KOAID>`.
fn drp_roots(level: u8, stage_file: &str, koaid: &str) -> (Vec<PathBuf>, Option<PathBuf>) {
    let l1 = drp::datadir(stage_file);
    if level < 2 {
        return (vec![l1], None);
    }
    let (l2, logs, qlp) = (swap_component(&l1, "L1", "L2"), swap_component(&l1, "L1", "logs"), swap_component(&l1, "L1", "QLP").join(koaid));
    (vec![l1, l2, logs], Some(qlp))
}

/// KPF products (instruments.md §7): files naming the KOAID below the
/// folders of [`drp_roots`] — of the quick-look tree only the sub-folders of
/// the last folder (walking top-down) that has any; destination
/// `<KOAID>/[QLP/<parent>/]<name without _zoomable>`.
pub fn drp_products(level: u8, stage_file: &str, koaid: &str, listing: &Listing) -> Vec<DrpProduct> {
    let (plain, qlp) = drp_roots(level, stage_file, koaid);
    let mut roots: Vec<(PathBuf, bool)> = plain.into_iter().map(|r| (r, false)).collect();
    if let Some(q) = qlp {
        // the listing is in walk order: a folder before its contents
        let mut folders = vec![q.clone()];
        folders.extend(listing.dirs_below(&q));
        let children = |d: &Path| -> Vec<PathBuf> { folders.iter().filter(|f| f.parent() == Some(d)).cloned().collect() };
        let last = folders.iter().rev().map(|d| children(d)).find(|c| !c.is_empty()).unwrap_or_default();
        roots.extend(last.into_iter().map(|d| (d, true)));
    }
    let mut out = Vec::new();
    for (root, qlp) in roots {
        for src in listing.files_below(&root).into_iter().filter(|p| drp::name(p).contains(koaid)) {
            let file = drp::name(&src).replace("_zoomable", "");
            let rel = if qlp {
                let parent = src.parent().map(drp::name).unwrap_or_default();
                Path::new(koaid).join("QLP").join(parent).join(file)
            } else {
                Path::new(koaid).join(file)
            };
            out.push(product(&src, rel));
        }
    }
    out
}

/// The KOAID an OFNAME names (`…/KP.20240315.30074.52.fits`), validated
/// against DATE-OBS; `None` when it is not one.
pub fn koaid_from_ofname(ofname: &str, date_obs: &str) -> Option<String> {
    let at = ofname.rfind("KP.")?;
    let tail = &ofname[at + 3..];
    let tail = tail.strip_suffix(".fits").unwrap_or(tail);
    let id = format!("KP.{tail}");
    let parts: Vec<&str> = id.split('.').collect();
    if parts.len() != 4 || date_obs.replace('-', "") != parts[1] || koa_sdk::time::parse_date(&format!("{}-{}-{}", parts[1].get(..4)?, parts[1].get(4..6)?, parts[1].get(6..8)?)).is_none() {
        return None;
    }
    let digits = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_digit());
    (digits(parts[2], 5) && digits(parts[3], 2)).then_some(id)
}

/// KPF's `set_utc`: a usable raw UTC is kept as it is (valid or not), else
/// the raw UT is copied verbatim, else the base rule.
pub fn set_utc(job: &mut Job) {
    if job.hdr.raw("UTC").is_some_and(usable) {
        return;
    }
    match job.hdr.raw("UT").filter(|v| usable(v)).cloned() {
        Some(ut) => {
            job.hdr.set("UTC", ut, "KOA: UTC keyword set from UT keyword");
        }
        None => koaid::set_utc(job),
    }
}

fn set_inst(job: &mut Job) -> StepResult {
    let sel = job.hdr.text("INSTRUME");
    if sel.as_deref() != Some("KPF") {
        let c = format!("set_inst to KPF, selected inst: {}", sel.clone().unwrap_or_else(|| "null".into()));
        job.hdr.set("INSTRUME", "KPF", &c);
    }
    job.hdr.set("INSTSLCT", sel, "Selected Instrument");
    Ok(true)
}

/// Seconds between two ISO timestamps, days and fractions included.
pub fn seconds_between(beg: &str, end: &str) -> Option<f64> {
    let (b, e) = (koa_sdk::time::parse_timestamp(beg)?, koa_sdk::time::parse_timestamp(end)?);
    Some((e - b).num_microseconds()? as f64 / 1e6)
}

fn set_elaptime(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    if h.raw("ELAPTIME").is_some_and(usable) {
        return Ok(true);
    }
    let v = h
        .raw_f64("ELAPSED")
        .map(round_int)
        .or_else(|| seconds_between(&h.text("DATE-BEG")?, &h.text("DATE-END")?).map(round_int));
    job.hdr.set("ELAPTIME", v, "KOA: Total integration time");
    Ok(true)
}

/// KOAIMTYP from IMTYPE (a usable header KOAIMTYP wins).
pub fn koaimtyp(hdr: &Header) -> Option<String> {
    if hdr.raw("KOAIMTYP").is_some_and(usable) {
        return None;
    }
    let Some(t) = hdr.text("IMTYPE").filter(|t| !t.trim().is_empty()) else { return Some("undefined".into()) };
    if t == "Object" && hdr.text("OBJECT").as_deref() == Some("SoCal") {
        return Some("solar".into());
    }
    let l = t.to_lowercase();
    Some(if ["object", "bias", "dark", "arclamp", "flatlamp", "domeflat", "twiflat", "undefined"].contains(&l.as_str()) { l } else { "undefined".into() })
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    if let Some(t) = koaimtyp(&job.hdr) {
        if t == "undefined" {
            job.warn("KOAIMTYP_UDF", format!("IMTYPE {:?} gives no image type", job.hdr.text("IMTYPE")));
        }
        job.hdr.set("KOAIMTYP", t, "KOA: Image type from IMTYPE");
    }
    Ok(true)
}

fn set_prog_info(job: &mut Job) -> StepResult {
    let progid = job.ctx.progid_override.as_deref().is_some_and(|p| !p.is_empty());
    if !progid && !job.hdr.raw("PROGNAME").is_some_and(usable) {
        for k in ["GRPROGNA", "RDPROGNA"] {
            if let Some(v) = job.hdr.raw(k).filter(|v| usable(v)).cloned() {
                job.hdr.set("PROGNAME", v, &format!("PROGNAME set from {k}"));
                break;
            }
        }
    }
    let ok = program::set_prog_info(job)?;
    if let Some(t) = job.extra("PROGTITL").cloned() {
        job.hdr.set("PROGTITL", t, "KOA: Program title set");
    }
    Ok(ok)
}

/// (blue, centre, red) Å from the GREEN/RED/CA_HK detector flags.
pub fn wavelengths(green: &str, red: &str, hk: &str) -> (i64, f64, i64) {
    let (green, red, hk) = (green.to_lowercase(), red.to_lowercase(), hk.to_lowercase());
    let mut low = 4450;
    let mut high = 8700;
    if hk == "yes" {
        low = 3900;
    } else if green == "no" {
        low = 5900;
    }
    if red == "no" {
        high = if green == "no" { 4450 } else { 5900 };
    }
    (low, low as f64 + (high - low) as f64 / 2.0, high)
}

fn set_wavelength(job: &mut Job) -> StepResult {
    let g = |k: &str| job.hdr.text(k);
    let (Some(green), Some(red), Some(hk)) = (g("GREEN"), g("RED"), g("CA_HK")) else {
        job.warn("SET_WAVELENGTH_ERROR", "GREEN, RED and CA_HK required");
        return Ok(false);
    };
    let (b, c, r) = wavelengths(&green, &red, &hk);
    let cm = "wavelength (angstroms) based on detectors used.";
    job.hdr.set("WAVEBLUE", b, cm);
    job.hdr.set("WAVERED", r, cm);
    job.hdr.set("WAVECNTR", c, cm);
    Ok(true)
}

/// Per detector (red, green, ca_hk): its amplifier HDUs tiled — more than two
/// amplifiers as 2×2 ([1|2] over [3|4] in array order), else side by side.
pub fn detector_previews(hdr: &Header) -> Vec<Preview> {
    let mut out = Vec::new();
    for key in ["red", "green", "ca_hk"] {
        let mut amps: Vec<(u32, usize, (u32, u32))> = Vec::new();
        for ext in 0..hdr.len() {
            let name = hdr.raw_text_ext(ext, "EXTNAME").unwrap_or_default().to_lowercase();
            let base = name.split("_amp").next().unwrap_or("").to_string();
            if base != key {
                continue;
            }
            let Some(size) = koa_sdk::preview::image_size(hdr, ext) else { continue };
            let amp = name.split("_amp").nth(1).and_then(|a| a.chars().last()?.to_digit(10)).unwrap_or(1);
            amps.push((amp, ext, size));
        }
        if amps.is_empty() {
            continue;
        }
        amps.sort();
        let n = amps.iter().map(|a| a.0).max().unwrap_or(1);
        let (w, h) = amps[0].2;
        let tiles = amps
            .iter()
            .map(|(amp, ext, (cols, rows))| {
                let i = amp - 1;
                let (x, y) = if n > 2 { ((i % 2) * w, (i / 2) * h) } else { (i * w, 0) };
                Tile { hdu: *ext as u32, crop: Region { x0: 0, y0: 0, nx: *cols, ny: *rows }, limits_box: None, bias: None, flip_x: false, flip_y: false, x, y, plane: None }
            })
            .collect();
        out.push(Preview {
            suffix: format!("_{key}"),
            tiles,
            per_tile_limits: false,
            nonnegative: false,
            scaling: Scaling::ZscaleSqrt,
            rotate: Rotation::None,
            origin_lower: true,
            bin: 1,
            width: None,
            height: None,
            quality: 75,
            prefer_sibling: false,
        });
    }
    out
}

impl Instrument for Kpf {
    const KEYMAP: KeyMap = &[("UTC", &["UT"])];

    fn drp_scan(ctx: &Context, stage_file: &str, koaid: &str) -> DrpRequest {
        let (plain, qlp) = drp_roots(ctx.level, stage_file, koaid);
        DrpRequest { folders: plain.iter().chain(qlp.iter()).map(|r| drp::folder(r, true)).collect(), headers: vec![] }
    }

    fn drp_select(ctx: &Context, stage_file: &str, koaid: &str, listing: &Listing) -> Result<Vec<DrpProduct>, String> {
        Ok(drp_products(ctx.level, stage_file, koaid, listing))
    }

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        Ok(job.hdr.lower("INSTRUME").contains("kpf").then(|| "KP".to_string()))
    }

    fn make_koaid(job: &mut Job) -> Result<Option<Koaid>, Fail> {
        if let Some(k) = koaid::existing(job) {
            return Ok(Some(k));
        }
        if let Some(of) = job.hdr.raw("OFNAME").filter(|v| usable(v)).map(to_text) {
            let date = job.hdr.raw_text("DATE-OBS").unwrap_or_default();
            return match koaid_from_ofname(&of, date.trim()) {
                Some(id) => {
                    set_utc(job);
                    Ok(Some(Koaid { id, prefix: "KP".into(), preexisting: false }))
                }
                None => {
                    job.error("KOAID_CREATE_FAIL", format!("OFNAME {of:?} does not carry a valid KOAID for DATE-OBS {date:?}"));
                    Ok(None)
                }
            };
        }
        koaid::make_koaid_with(job, Self::set_instr, Self::prefix, set_utc)
    }

    fn has_target_info(job: &mut Job) -> bool {
        if !job.hdr.raw("UT").is_some_and(usable) {
            return true;
        }
        program::is_daytime(job) != Some(true)
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_inst", set_inst),
            crit("set_semester", program::set_semester),
            crit("set_elaptime", set_elaptime),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_prog_info", set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_weather", common::set_weather),
            opt("set_wavelength", set_wavelength),
            opt("set_oa", common::set_oa),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_dqa_date", common::set_dqa_date),
            opt("set_dqa_vers", common::set_dqa_vers),
        ]
    }

    fn preview_plan(_ctx: &Context, hdr: &Header) -> Vec<Preview> {
        detector_previews(hdr)
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Kpf);

#[cfg(test)]
mod tests;
