//! Realistic raw frames for the demo, the tests and the benchmarks, and the
//! services fixture that answers for them. Headers carry the telescope and
//! instrument keywords a real frame carries (a few hundred cards) with the
//! values each instrument's rules read.

use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};

use super::{Data, Frame, FrameHdu, card, float, image_cards, int, text};
use crate::fits::{Card, HValue};
use crate::sandbox::bindings::types::{Program, ScheduleEntry, Staff, TwilightTimes};
use crate::services::fixture::Fixture;

/// Observation time of a sample: UT date, UT time, frame number.
#[derive(Clone, Debug)]
pub struct Obs {
    pub date: String,
    pub utc: String,
    pub frame: u32,
}

impl Obs {
    pub fn new(date: &str, utc: &str, frame: u32) -> Obs {
        Obs { date: date.into(), utc: utc.into(), frame }
    }

    /// `YYMMDD` of the date.
    pub fn yymmdd(&self) -> String {
        self.date.replace('-', "")[2..].to_string()
    }
}

/// Telescope (DCS) keywords common to every Keck frame: pointing, dome,
/// rotator, target, environment — about 110 cards.
pub fn telescope_cards(telnr: u8, obs: &Obs, seed: u64) -> Vec<Card> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut r = |lo: f64, hi: f64| lo + (hi - lo) * rng.random::<f64>();
    let el = r(35.0, 85.0);
    let az = r(0.0, 360.0);
    let mut c = vec![
        text("TELESCOP", if telnr == 1 { "Keck I" } else { "Keck II" }),
        text("ORIGIN", "W. M. Keck Observatory"),
        text("OBSERVAT", "Keck"),
        text("DATE-OBS", &obs.date),
        text("UTC", &obs.utc),
        text("DCSSTAT", "standby"),
        text("DCSVERS", "TCSU"),
        float("AIRMASS", 1.0 / (el.to_radians().sin())),
        text("AXESTAT", "tracking"),
        float("AZ", az),
        float("EL", el),
        float("RA", r(0.0, 360.0)),
        float("DEC", r(-30.0, 80.0)),
        text("RADECSYS", "FK5"),
        float("EQUINOX", 2000.0),
        text("DOMESTAT", "tracking"),
        float("DOMEPOSN", az + r(-1.0, 1.0)),
        float("HA", r(-3.0, 3.0)),
        text("LST", "10:40:09.09"),
        float("PARANG", r(-180.0, 180.0)),
        float("PARANTEL", r(-180.0, 180.0)),
        float("ROTDEST", 0.0),
        text("ROTMODE", "stationary"),
        float("ROTPDEST", 0.0),
        float("ROTPOSN", r(-180.0, 180.0)),
        float("ROTPPOSN", r(-180.0, 180.0)),
        float("ROTCALAN", 0.0),
        float("ROTREFAN", 0.0),
        float("SECFOCUS", r(-0.002, 0.002)),
        text("FOCALSTN", if telnr == 1 { "rnas (right nasmyth)" } else { "rbc2 (right bent cass 2)" }),
        float("TELFOCUS", r(-0.01, 0.01)),
        text("TARGNAME", "HD 12345"),
        text("TARGFRAM", "FK5"),
        float("TARGEPOC", 2000.0),
        float("TARGEQUI", 2000.0),
        float("TARGPLAX", 0.0),
        float("TARGPMDC", 0.0),
        float("TARGPMRA", 0.0),
        float("TARGRADV", 0.0),
        float("TARGRA", 33.4375),
        float("TARGDEC", 45.2),
        float("PA", r(0.0, 360.0)),
        float("INSTANGL", 181.1),
        text("INSTFLIP", "no"),
        float("TVANGL", 1.2),
        text("TVFLIP", "no"),
        float("POXOFF", 0.0),
        float("POYOFF", 0.0),
        float("XOFFSET", 0.0),
        float("YOFFSET", 0.0),
        float("MJD-OBS", 58649.1455),
        text("DATE", &format!("{}T{}", obs.date, &obs.utc[..8])),
    ];
    for i in 1..=9 {
        c.push(text(&format!("PONAME{i}"), if i < 6 { "REF" } else { "<udf>" }));
        c.push(float(&format!("POXPOS{i}"), r(-1.0, 1.0)));
        c.push(float(&format!("POYPOS{i}"), r(-1.0, 1.0)));
    }
    for i in 3..=10 {
        c.push(float(&format!("DWRTMP{i}"), r(70.0, 80.0)));
    }
    for k in ["CALOCAL", "CELOCAL", "TUBETEMP"] {
        c.push(float(k, r(-1.0, 5.0)));
    }
    for (k, v) in [("GUIDFWHM", 0.6), ("DTHCOORD", 0.0)] {
        c.push(float(k, v));
    }
    c.push(text("COMMENT", "").with_comment("   ---- telescope keywords ----"));
    c
}

trait WithComment {
    fn with_comment(self, c: &str) -> Self;
}

impl WithComment for Card {
    fn with_comment(mut self, c: &str) -> Self {
        if self.key == "COMMENT" || self.key == "HISTORY" {
            self.commentary = true;
            self.value = HValue::Undefined;
        }
        self.comment = c.to_string();
        self
    }
}

/// A dome-flat/sky-like float image: background plus curved bright orders
/// (spectrograph) or a smooth field with stars (imager).
pub fn sky_image(cols: usize, rows: usize, spectrum: bool, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut px = Vec::with_capacity(cols * rows);
    let stars: Vec<(f64, f64, f64)> =
        (0..30).map(|_| (rng.random::<f64>() * cols as f64, rng.random::<f64>() * rows as f64, rng.random::<f64>() * 8000.0)).collect();
    for y in 0..rows {
        for x in 0..cols {
            let (xf, yf) = (x as f64 / cols as f64, y as f64 / rows as f64);
            let mut v = 100.0 + 0.02 * x as f64 + (rng.random::<f64>() - 0.5) * 20.0;
            if spectrum {
                for k in 0..5 {
                    let centre = 0.12 + 0.18 * k as f64 + 0.05 * (xf * std::f64::consts::PI).sin() + 0.02 * xf * xf;
                    let d = ((yf - centre) * rows as f64 / 30.0).abs();
                    v += 4000.0 * (1.0 - d.powi(4)).max(0.0) * (0.6 + 0.4 * (1.0 - (xf - 0.5).abs()));
                }
            } else {
                for (sx, sy, f) in stars.iter().take(12) {
                    let d2 = (x as f64 - sx).powi(2) + (y as f64 - sy).powi(2);
                    if d2 < 100.0 {
                        v += f * (-d2 / 8.0).exp();
                    }
                }
            }
            px.push(v as f32);
        }
    }
    px
}

/// A NIRES frame: `spec` 2048×1024 (file sYYMMDD_NNNN) or `imag` 1024×1024 (vYYMMDD_NNNN).
pub fn nires(mode: &str, obstype: &str, progname: &str, obs: &Obs, seed: u64) -> (String, Frame) {
    let dims = if mode == "spec" { (2048, 1024) } else { (1024, 1024) };
    nires_sized(mode, obstype, progname, obs, seed, dims)
}

/// A NIRES frame of a chosen size (cols, rows): the small variant keeps every
/// card of the real one (unit tests, queue bursts).
pub fn nires_sized(mode: &str, obstype: &str, progname: &str, obs: &Obs, seed: u64, (cols, rows): (usize, usize)) -> (String, Frame) {
    let spec = mode == "spec";
    let stem = format!("{}{}_{:04}", if spec { "s" } else { "v" }, obs.yymmdd(), obs.frame);
    let mut cards = image_cards(true, -32, &[cols as u64, rows as u64]);
    cards.extend(telescope_cards(2, obs, seed));
    cards.extend([
        text("INSTRUME", "NIRES"),
        text("CURRINST", "NIRES"),
        text("INSTR", mode),
        text("DATAFILE", &stem),
        int("FRAMENUM", obs.frame as i64),
        float("ITIME", 100.0),
        int("COADDS", 1),
        float("RDITIME", 100.0),
        int("NUMREADS", 2),
        int("NUMFS", 1),
        int("NUMUTRS", 1),
        int("SAMPMODE", 3),
        text("OBSTYPE", obstype),
        text("OBJECT", if obstype == "object" { "HD 12345" } else { "NAME" }),
        text("OBSERVER", "Observer"),
        text("PROGNAME", progname),
        text("OUTDIR", &format!("/s/sdata1500/nires9/{}/", obs.date.replace('-', ""))),
        int("SATURATE", 33000),
        float("GAIN", 1.0),
        text("DISPNAME", if spec { "nires_spec.fits" } else { "nires_imag.fits" }),
        text("BADPIX", "/kroot/data/nires/badbadpix.fits"),
        text("LINCOEFF", "/kroot/data/nires/lin.fits"),
        text("NOISEFIL", "/kroot/data/nires/h2rg_var.fits"),
        text("PCIFILE", "/kroot/data/nires/nires_pci.lod"),
        text("TIMFILE", "/kroot/data/nires/tim_v161118.lod"),
        text("DPATNAME", "NONE"),
        text("DPATMODE", "relative"),
        text("DPATCSYS", "inst"),
        int("DPATNPOS", 1),
        int("DPATIPOS", 4),
        int("DPATIREP", 23),
        float("DPATSTPX", 0.0),
        float("DPATSTPY", 0.0),
        text("PATTERN", "none"),
        float("PSCALE", 0.15),
        text("CTYPE1", "RA---TAN"),
        text("CTYPE2", "DEC--TAN"),
        float("CRPIX1", 1033.0),
        float("CRPIX2", 1035.0),
        float("CRVAL1", 58.0),
        float("CRVAL2", 45.0),
        float("CD1_1", -4.16500198582894e-05),
        float("CD1_2", -1.17769134972044e-06),
        float("CD2_1", -1.17769134972044e-06),
        float("CD2_2", 4.16500198582894e-05),
        float("LTM1_1", 1.0),
        float("LTM2_2", 1.0),
        int("WCSDIM", 2),
        text("WAT0_001", "system=image"),
        text("WAT1_001", "wtype=tan axtype=ra"),
        text("WAT2_001", "wtype=tan axtype=dec"),
        int("TMP1RANG", 0),
        int("TMPACT1", 1),
        int("TMPACT2", 1),
        float("TARGTMP1", 74.0),
        float("TARGTMP2", 74.0),
        float("REGTMP1", 73.956),
        float("REGTMP2", 74.064),
        int("XREFSUB", 0),
        int("YREFSUB", 0),
        float("OUTPUT1", 0.0),
        float("OUTPUT2", 0.0),
        text("FCSMECH", "FCS"),
        int("FCSON", 1),
        int("FCSACTIV", 1),
    ]);
    for (i, n) in ["TD1 T40 H2RG mount", "TD2 T27 H2RG mount", "NC", "NC", "TD5 T20 Auxiliary tank front", "TD6 T22 Camera rear", "TD7 T26 Rear bulkhead top", "TD8 T25 H1 cold finger", "TD9 T23 Camera front", "TD10 T2 Fill neck main LN2 tank"].iter().enumerate() {
        cards.push(text(&format!("CHNAME{}", i + 1), n));
        cards.push(float(&format!("CHTEMP{}", i + 1), 60.0 + i as f64));
    }
    for i in 0..60 {
        cards.push(float(&format!("NIRTMP{i:02}"), 70.0 + (i % 7) as f64 * 0.5));
    }
    cards.push(card("HISTORY", HValue::Undefined, "").with_comment("written by the koa-dep sample generator"));
    let px = sky_image(cols, rows, spec, seed);
    (format!("{stem}.fits"), Frame { hdus: vec![FrameHdu { cards, data: Data::F32(px) }] })
}

/// A sample frame by name: an instrument (`deimos`, `kcwi`, …, full size),
/// `<instrument>-small`, `lris-red`, `nires-imag`. Returns (file name, frame).
pub fn frame(kind: &str, seed: u64) -> Option<(String, Frame)> {
    let obs = Obs::new("2024-03-15", "08:21:14.52", 17);
    let kind = kind.to_lowercase();
    if kind == "nires-imag" {
        return Some(nires("imag", "object", "C272", &obs, seed));
    }
    let (name, size) = match kind.strip_suffix("-small") {
        Some(k) => (k.to_string(), super::frames::Size::Small),
        None => (kind, super::frames::Size::Full),
    };
    super::frames::frame(&name, size, seed as u32)
}

/// The demo's input frames, one of every instrument whose component is built
/// into this binary: (instrument, path).
pub fn write_demo_inputs(dir: &Path, size: super::frames::Size) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let day = dir.join("20240315");
    let mut out = Vec::new();
    let built: Vec<&str> = crate::sandbox::registry::builtin_components().iter().map(|(n, _)| *n).collect();
    for (i, instrument) in super::frames::INSTRUMENTS.iter().enumerate() {
        if !built.contains(&instrument.to_lowercase().as_str()) {
            continue;
        }
        let (name, f) = super::frames::frame(instrument, size, i as u32).expect("generator");
        let p = day.join(instrument.to_lowercase()).join(name);
        f.write(&p)?;
        out.push((instrument.to_string(), p));
    }
    Ok(out)
}

/// Services answering for the demo frames (programs, staff, twilight, schedule).
pub fn services() -> Fixture {
    let mut f = Fixture::default();
    f.telescopes = Some([("NIRES".to_string(), 2u8), ("KCWI".into(), 2), ("DEIMOS".into(), 2), ("ESI".into(), 2), ("NIRC2".into(), 2), ("NIRSPEC".into(), 2), ("OSIRIS".into(), 1), ("HIRES".into(), 1), ("LRIS".into(), 1), ("MOSFIRE".into(), 1), ("KPF".into(), 1), ("SCALES".into(), 2)].into_iter().collect());
    let prog = |pi: &str, inst: &str, title: &str| Program {
        pi: Some(pi.into()),
        institution: Some(inst.into()),
        title: Some(title.into()),
        propint: Some(18),
        failures: vec![],
    };
    f.programs = Some(
        [
            ("2024A_C272".to_string(), prog("de Kleer", "CIT", "Origin of the Irregular Satellites")),
            ("2024A_U123".to_string(), prog("Smith", "UC", "Demo program")),
        ]
        .into_iter()
        .collect(),
    );
    f.night_staff = Some([("2024-03-14".to_string(), vec![Staff { kind: "oa".into(), alias: "jpelletier".into() }])].into_iter().collect());
    f.twilight = Some(
        [("2024-03-15".to_string(), TwilightTimes { sunset: "04:45:00".into(), sunrise: "16:20:00".into() })].into_iter().collect(),
    );
    f.schedule = Some(
        [(
            "2024-03-14".to_string(),
            vec![ScheduleEntry {
                date: "2024-03-14".into(),
                telnr: 2,
                instrument: "NIRES".into(),
                proj_code: "C272".into(),
                start_time: "18:45".into(),
                end_time: "06:00".into(),
                obs_type: "Classical".into(),
            }],
        )]
        .into_iter()
        .collect(),
    );
    f
}

/// One directory-watch service per instrument, watching `<incoming>/<instr>`
/// for `*.fits` (the demo's and the daemon tests' keyword-free source).
pub fn watch_services<'a>(incoming: &Path, instruments: impl IntoIterator<Item = &'a str>) -> Vec<crate::config::Service> {
    let mut names: Vec<String> = instruments.into_iter().map(|i| i.to_uppercase()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|instrument| {
            let dir = incoming.join(instrument.to_lowercase());
            crate::config::Service {
                name: format!("{}_watch", instrument.to_lowercase()),
                ktl: instrument.to_lowercase(),
                instrument: instrument.clone(),
                trigger: "FILE".into(),
                required_value: None,
                path_format: None,
                zfill: Default::default(),
                heartbeat: None,
                heartbeat_s: None,
                transfer: false,
                source: crate::config::Source::Watch { dir: dir.clone(), pattern: "*.fits".into() },
                history_table: None,
                files: vec![format!("{}/**/*.fits", dir.display())],
                enabled: true,
                silent_minutes: None,
            }
        })
        .collect()
}
