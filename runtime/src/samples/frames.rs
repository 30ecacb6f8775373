//! One realistic raw frame per instrument: the HDU layouts and sizes of the
//! real detectors (DEIMOS 8 × 4096 × 2248 uint16, KCWI 2300 × 2200 uint16,
//! MOSFIRE 2048² float32 with slit tables, HIRES 3 CCDs, LRIS blue 4
//! amplifiers, NIRC2 1024² int32, KPF per-detector amplifiers, guider
//! 255², …), headers of a few hundred cards with the keywords each
//! instrument's rules read, file names that match their OFNAME rules, and a
//! `Small` variant of every layout for unit tests. Pixels come from a fast
//! deterministic generator (bias + overscan + sky/flat + features + noise).

use super::demo::{Obs, nires, telescope_cards};
use super::{Data, Frame, FrameHdu, card, float, image_cards, int, logical, text};
use crate::fits::{Card, HValue};

/// Full-size detectors, or small ones with the same structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Full,
    Small,
}

/// Every instrument with a generator.
pub const INSTRUMENTS: [&str; 13] =
    ["DEIMOS", "ESI", "GUIDER", "HIRES", "KCWI", "KPF", "LRIS", "MOSFIRE", "NIRC2", "NIRES", "NIRSPEC", "OSIRIS", "SCALES"];

/// xorshift64*: fast, deterministic noise.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Roughly normal noise (sum of uniforms), unit variance.
    #[inline]
    fn noise(&mut self) -> f32 {
        let r = self.next();
        let s = (r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48);
        (s as f32 / 65536.0 - 2.0) * 1.732
    }
}

/// A CCD readout: bias with prescan/overscan columns, a smooth illumination
/// in the data columns, optional spectral traces, Gaussian-ish read noise.
fn ccd(cols: usize, rows: usize, precol: usize, postpix: usize, level: f32, traces: usize, seed: u64) -> Vec<u16> {
    let mut rng = Rng::new(seed);
    let bias = 1000.0 + (seed % 50) as f32;
    let mut out = Vec::with_capacity(cols * rows);
    for y in 0..rows {
        let row_bias = bias + (y as f32 * 0.001).sin() * 3.0;
        for x in 0..cols {
            let mut v = row_bias + rng.noise() * 4.0;
            if x >= precol && x < cols - postpix {
                let xf = (x - precol) as f32 / (cols - precol - postpix) as f32;
                v += level * (0.8 + 0.2 * (xf * 3.1).sin());
                for t in 0..traces {
                    let c = (t as f32 + 0.5) / traces as f32 * rows as f32 + 20.0 * (xf * 6.0).sin();
                    let d = (y as f32 - c) / 6.0;
                    if d.abs() < 4.0 {
                        v += 6000.0 * (-d * d).exp();
                    }
                }
            }
            out.push(v.clamp(0.0, 65535.0) as u16);
        }
    }
    out
}

/// A float image: sky, a few stars, noise.
fn sky(cols: usize, rows: usize, level: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let stars: Vec<(f32, f32, f32)> = (0..25)
        .map(|_| {
            let a = rng.next();
            ((a % cols as u64) as f32, ((a >> 20) % rows as u64) as f32, 500.0 + ((a >> 40) % 20000) as f32)
        })
        .collect();
    let mut out = Vec::with_capacity(cols * rows);
    for y in 0..rows {
        for x in 0..cols {
            let mut v = level + 0.01 * x as f32 + rng.noise() * 8.0;
            for (sx, sy, f) in &stars {
                let d2 = (x as f32 - sx).powi(2) + (y as f32 - sy).powi(2);
                if d2 < 64.0 {
                    v += f * (-d2 / 6.0).exp();
                }
            }
            out.push(v);
        }
    }
    out
}

/// Instrument telemetry to reach a real header's card count.
fn telemetry(prefix: &str, n: usize, seed: u64) -> Vec<Card> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let v = (rng.next() % 100_000) as f64 / 1000.0;
            let mut c = float(&format!("{prefix}{i:03}"), v);
            c.comment = format!("{prefix} sensor {i}");
            c
        })
        .collect()
}

fn comment(text: &str) -> Card {
    let mut c = card("COMMENT", HValue::Undefined, text);
    c.commentary = true;
    c
}

/// A section title as instrument software writes it.
fn section(title: &str) -> Card {
    comment(&format!("  ---- {title} ----"))
}

fn u16_image(primary: bool, cols: usize, rows: usize, data: Vec<u16>, mut extra: Vec<Card>) -> FrameHdu {
    let mut cards = image_cards(primary, 16, &[cols as u64, rows as u64]);
    let at = if primary { 6 } else { 7 };
    cards.insert(at, float("BZERO", 32768.0));
    cards.insert(at + 1, float("BSCALE", 1.0));
    cards.append(&mut extra);
    FrameHdu { cards, data: Data::U16(data) }
}

fn empty_primary(extra: Vec<Card>) -> FrameHdu {
    let mut cards = image_cards(true, 16, &[]);
    cards.extend(extra);
    FrameHdu { cards, data: Data::None }
}

/// A binary table HDU from columns of (name, TFORM, width in bytes) and rows of cells.
fn table(extname: &str, cols: &[(&str, &str, usize)], rows: &[Vec<Vec<u8>>]) -> FrameHdu {
    let width: usize = cols.iter().map(|c| c.2).sum();
    let mut cards = vec![
        text("XTENSION", "BINTABLE"),
        int("BITPIX", 8),
        int("NAXIS", 2),
        int("NAXIS1", width as i64),
        int("NAXIS2", rows.len() as i64),
        int("PCOUNT", 0),
        int("GCOUNT", 1),
        int("TFIELDS", cols.len() as i64),
    ];
    for (i, (name, form, _)) in cols.iter().enumerate() {
        cards.push(text(&format!("TTYPE{}", i + 1), name));
        cards.push(text(&format!("TFORM{}", i + 1), form));
    }
    cards.push(text("EXTNAME", extname));
    let data = rows.iter().flat_map(|r| r.iter().flatten().copied()).collect();
    FrameHdu { cards, data: Data::Bytes(data) }
}

fn a(s: &str, n: usize) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.resize(n, b' ');
    b
}

fn e(v: f32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn j(v: i32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// `[x1:x2,y1:y2]`
fn sec(x1: i64, x2: i64, y1: i64, y2: i64) -> String {
    format!("[{x1}:{x2},{y1}:{y2}]")
}

/// A sample frame of an instrument: (file name, frame). `n` varies the
/// frame number, the time and the pixels.
pub fn frame(instrument: &str, size: Size, n: u32) -> Option<(String, Frame)> {
    let (name, mut f) = instrument_frame(instrument, size, n)?;
    // an instrument's own value of a keyword replaces the generic telescope one
    for h in &mut f.hdus {
        let mut seen = std::collections::HashSet::new();
        let mut keep: Vec<Card> = Vec::with_capacity(h.cards.len());
        for c in h.cards.drain(..).rev() {
            if c.commentary || seen.insert(c.key.clone()) {
                keep.push(c);
            }
        }
        keep.reverse();
        h.cards = keep;
    }
    Some((name, f))
}

fn instrument_frame(instrument: &str, size: Size, n: u32) -> Option<(String, Frame)> {
    let obs = Obs::new("2024-03-15", &format!("08:{:02}:{:02}.{:02}", 20 + n / 60 % 30, n % 60, 10 + n % 80), 17 + n);
    let seed = n as u64 * 7919 + 1;
    Some(match instrument.to_uppercase().as_str() {
        "NIRES" => match size {
            Size::Full => nires("spec", "object", "C272", &obs, seed),
            Size::Small => super::demo::nires_sized("spec", "object", "C272", &obs, seed, (128, 64)),
        },
        "DEIMOS" => deimos(size, &obs, seed),
        "ESI" => esi(size, &obs, seed),
        "GUIDER" => guider(&obs, seed),
        "HIRES" => hires(size, &obs, seed),
        "KCWI" => kcwi(size, &obs, seed),
        "KPF" => kpf(size, &obs, seed),
        "LRIS" => lris_blue(size, &obs, seed),
        "LRIS-RED" => lris_red(size, &obs, seed),
        "MOSFIRE" => mosfire(size, &obs, seed),
        "NIRC2" => nirc2(size, &obs, seed),
        "NIRSPEC" => nirspec(size, &obs, seed),
        "OSIRIS" => osiris(size, &obs, seed),
        "SCALES" | "SCALES-IFS" => scales(size, &obs, seed, Scales::Ifs),
        "SCALES-IM" => scales(size, &obs, seed, Scales::Imager),
        "SCALES-QRAMP" => scales(size, &obs, seed, Scales::Qramp),
        _ => return None,
    })
}

/// Observatory and program keywords of every frame.
fn common(telnr: u8, obs: &Obs, seed: u64, progname: &str, outdir: &str) -> Vec<Card> {
    let mut c = telescope_cards(telnr, obs, seed);
    c.push(section("instrument"));
    c.push(text("PROGNAME", progname));
    c.push(text("OBSERVER", "Observer"));
    c.push(text("OUTDIR", outdir));
    c
}

fn deimos(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let (cols, rows, precol, postpix) = match size {
        Size::Full => (2248, 4096, 50, 150),
        Size::Small => (178, 256, 4, 14),
    };
    let outfile = format!("d{}_", &obs.date.replace('-', "")[4..]);
    let mut p = common(2, obs, seed, "U123", "/sdata1000/dmoseng/2024mar15/");
    p.extend([
        text("INSTRUME", "DEIMOS: real science mosaic CCD subsystem with PowerPC in VME crate"),
        text("OUTFILE", &outfile),
        int("FRAMENO", obs.frame as i64),
        text("OBSTYPE", "Object"),
        text("OBJECT", "NGC 4565 mask"),
        text("SLMSKNAM", "ngc4565a"),
        text("HATCHPOS", "open"),
        text("FLIMAGIN", "off"),
        text("FLSPECTR", "off"),
        text("LAMPS", "Off"),
        text("GRATENAM", "900ZD"),
        int("GRATEPOS", 3),
        float("G3TLTWAV", 5500.0),
        text("G3TLTNAM", "Tilt"),
        text("DWFILNAM", "GG455"),
        float("MJD-OBS", 60384.3),
        text("BINNING", "1,1"),
        int("PRECOL", precol as i64),
        int("POSTPIX", postpix as i64),
        int("PRELINE", 0),
        int("POSTLINE", 0),
        float("EXPTIME", 1200.0),
        float("ELAPTIME", 1200.0),
        text("FCSIMGFI", ""),
        int("NVIDINP", 8),
    ]);
    p.extend(telemetry("DMTMP", 180, seed));
    let mut f = Frame { hdus: vec![empty_primary(p)] };
    // 2 rows of 4 CCDs; the upper row read out mirrored
    for i in 0..8u32 {
        let (row, k) = ((i / 4) as i64, (i % 4) as i64);
        let (x1, x2) = (k * 2048 + 1, (k + 1) * 2048);
        let (y1, y2) = (row * 4096 + 1, (row + 1) * 4096);
        let detsec = if row == 1 { sec(x2, x1, y2, y1) } else { sec(x1, x2, y1, y2) };
        let mut ext = vec![
            text("EXTNAME", &format!("Amp{}", i + 1)),
            text("DETSEC", &detsec),
            text("DATASEC", &sec(precol as i64 + 1, (cols - postpix) as i64, 1, rows as i64)),
            text("CCDNAME", &format!("CCD{}", i + 1)),
            float("GAIN", 1.2),
            float("RDNOISE", 2.6),
        ];
        ext.extend(telemetry("AMPPAR", 40, seed + i as u64));
        let px = ccd(cols, rows, precol, postpix, 300.0, 6, seed + i as u64);
        f.hdus.push(u16_image(false, cols, rows, px, ext));
    }
    (format!("{outfile}{:04}.fits", obs.frame), f)
}

fn esi(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let (cols, rows) = match size {
        Size::Full => (2048, 4096),
        Size::Small => (128, 256),
    };
    let outfile = format!("e{}_", &obs.date.replace('-', "")[2..]);
    let mut p = common(2, obs, seed, "U123", "/sdata701/esi/2024mar15/");
    p.extend([
        text("INSTRUME", "ESI"),
        text("OUTFILE", &outfile),
        int("FRAMENO", obs.frame as i64),
        text("OBSTYPE", "Object"),
        text("OBJECT", "QSO J1234+5678"),
        text("HATCHPOS", "open"),
        text("LAMPQTZ1", "off"),
        text("LAMPAR1", "off"),
        text("LAMPCU1", "off"),
        text("LAMPNE1", "off"),
        text("LAMPNE2", "off"),
        text("PRISMNAM", "in"),
        text("IMFLTNAM", "out"),
        text("LDFLTNAM", "in"),
        text("DWFILNAM", "clear_s"),
        text("SLMSKNAM", "0.75_arcsec"),
        float("ELAPTIME", 900.0),
        float("TTIME", 900.0),
        text("UT", &obs.utc),
    ]);
    p.extend(telemetry("ESITMP", 120, seed));
    let px = ccd(cols, rows, 0, 0, 400.0, 10, seed);
    let f = Frame { hdus: vec![u16_image(true, cols, rows, px, p)] };
    (format!("{outfile}{:04}.fits", obs.frame), f)
}

fn guider(obs: &Obs, seed: u64) -> (String, Frame) {
    let mut p = telescope_cards(1, obs, seed);
    p.retain(|c| c.key != "OUTDIR");
    p.extend([
        text("CURRINST", "HIRES"),
        text("CAMNAME", "K1ACAMA"),
        text("CAMERA", "ACAM"),
        float("TTIME", 2.0),
        text("FILTER0", "clear"),
        text("FILTER1", ""),
        text("OUTDIR", "/s/sdata125/kcam/2024mar15/"),
    ]);
    p.extend(telemetry("GDTMP", 60, seed));
    let mut cards = image_cards(true, 16, &[255, 255]);
    cards.extend(p);
    let px: Vec<i16> = sky(255, 255, 300.0, seed).iter().map(|v| v.clamp(-32768.0, 32767.0) as i16).collect();
    let f = Frame { hdus: vec![FrameHdu { cards, data: Data::I16(px) }] };
    (format!("k1acama_{}_{:04}.fits", obs.yymmdd(), obs.frame), f)
}

fn hires(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let (rows, precol, data, postpix) = match size {
        Size::Full => (4096, 12, 1024, 80),
        Size::Small => (256, 12, 64, 20),
    };
    let (bx, by) = (2, 1);
    let cols = precol / bx + data + postpix / bx;
    let outfile = "hires";
    let mut p = common(1, obs, seed, "U123", "/s/sdata125/hires1/2024mar15/");
    p.extend([
        text("INSTRUME", "HIRES: High Resolution Echelle Spectrometer"),
        text("OUTFILE", outfile),
        int("FRAMENO", obs.frame as i64),
        text("BINNING", "2,1"),
        int("PRECOL", precol as i64),
        int("POSTPIX", postpix as i64),
        text("AUTOSHUT", "T"),
        text("LAMPNAME", "none"),
        int("LMIRRIN", 0),
        int("DARKCLOS", 0),
        float("TTIME", 600.0),
        text("DECKNAME", "C1"),
        float("CATCUR1", 0.0),
        float("CATCUR2", 0.0),
        int("HATCLOS", 0),
        int("HATOPEN", 1),
        text("XDISPERS", "RED"),
        float("XDSIGMAI", 250.0),
        float("XDANGL", 0.6),
        float("ECHANGL", 0.0),
        int("XDCAL", 1),
        int("ECHCAL", 1),
        float("SLITWID", 0.861),
        text("CCDGAIN", "low"),
        text("AMPMODE", "SINGLE:B"),
        float("IROT2ANG", 10.0),
        float("PEXPTIME", 0.0),
        float("PEXPELAP", 0.0),
        text("ERAMODE", "B,G,R"),
        text("MOSMODE", "B,G,R"),
        text("UTC-END", "08:31:14.52"),
        text("IMAGETYP", "object"),
    ]);
    for k in ["CAFCAL", "COFCAL", "DECKCAL", "FIL1CAL", "FIL2CAL", "LFILCAL", "LSELCAL", "SLITCAL", "TVACAL", "TVFCAL", "TVF1CAL", "TVF2CAL", "TEMPDET"] {
        p.push(int(k, 1));
    }
    for k in ["C1CV", "C2CV", "ECOV", "XCOV", "RCCV", "BCCV"] {
        p.push(int(&format!("{k}OPEN"), 1));
        p.push(int(&format!("{k}CLOS"), 0));
    }
    p.extend(telemetry("HITMP", 150, seed));
    let mut f = Frame { hdus: vec![empty_primary(p)] };
    for e in 1..=3 {
        let px = ccd(cols, rows, precol / bx, postpix / bx, 500.0, 20, seed + e);
        let ext = vec![text("EXTNAME", &format!("CCD{e}")), text("AMPLOC", &format!("{}", e * 2)), int("CCDLOC", e as i64)];
        f.hdus.push(u16_image(false, cols, rows, px, ext));
    }
    let _ = by;
    (format!("{outfile}{:04}.fits", obs.frame), f)
}

fn kcwi(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let (cols, rows) = match size {
        Size::Full => (2300, 2200),
        Size::Small => (230, 220),
    };
    let ofname = format!("kb{}_{:05}", obs.date.replace('-', "")[2..].to_string(), obs.frame);
    let mut p = common(2, obs, seed, "U123", "/sdata1400/kcwi1/2024mar15/");
    p.retain(|c| c.key != "UTC");
    p.extend([
        text("INSTRUME", "KCWI"),
        text("CAMERA", "BLUE"),
        text("UT", &obs.utc),
        text("OFNAME", &ofname),
        int("FRAMENO", obs.frame as i64),
        text("IMTYPE", "OBJECT"),
        float("XPOSURE", 600.0),
        float("EXPTIME", 600.0),
        text("IFUNAM", "Medium"),
        float("BCWAVE", 4500.0),
        text("BGRATNAM", "BM"),
        text("BNASNAM", "Open"),
        text("BINNING", "2,2"),
    ]);
    p.extend(telemetry("KCTMP", 260, seed));
    let px = ccd(cols, rows, 0, 0, 250.0, 24, seed);
    (format!("{ofname}.fits"), Frame { hdus: vec![u16_image(true, cols, rows, px, p)] })
}

fn kpf(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let (side, hk) = match size {
        Size::Full => (2040, (1024, 255)),
        Size::Small => (96, (64, 16)),
    };
    let secs: u32 = obs.utc[..2].parse::<u32>().unwrap_or(0) * 3600 + obs.utc[3..5].parse::<u32>().unwrap_or(0) * 60 + obs.utc[6..8].parse::<u32>().unwrap_or(0);
    let koaid = format!("KP.{}.{:05}.{}", obs.date.replace('-', ""), secs, &obs.utc[9..11]);
    let mut p = common(1, obs, seed, "U123", "/s/sdata1701/kpfeng/2024mar15/");
    p.retain(|c| c.key != "UTC" && c.key != "OUTDIR");
    p.extend([
        text("INSTRUME", "KPF"),
        text("OFNAME", &format!("{koaid}.fits")),
        text("UT", &obs.utc),
        text("OUTDIR", "/s/sdata1701/kpf/2024mar15/"),
        text("IMTYPE", "Object"),
        text("OBJECT", "HD 10700"),
        float("ELAPSED", 300.0),
        text("DATE-BEG", &format!("{}T{}", obs.date, obs.utc)),
        text("GREEN", "YES"),
        text("RED", "YES"),
        text("CA_HK", "YES"),
        text("GRPROGNA", "U123"),
    ]);
    p.retain(|c| c.key != "PROGNAME");
    p.extend(telemetry("KPFTMP", 450, seed));
    let mut f = Frame { hdus: vec![empty_primary(p)] };
    for det in ["GREEN", "RED"] {
        for amp in 1..=2 {
            let px = ccd(side, side, 0, 0, 800.0, 30, seed + amp);
            let ext = vec![text("EXTNAME", &format!("{det}_AMP{amp}"))];
            f.hdus.push(u16_image(false, side, side, px, ext));
        }
    }
    let px = ccd(hk.0, hk.1, 0, 0, 200.0, 4, seed + 9);
    f.hdus.push(u16_image(false, hk.0, hk.1, px, vec![text("EXTNAME", "CA_HK")]));
    (format!("{koaid}.fits"), f)
}

fn lris_common(obs: &Obs, seed: u64, instrume: &str, outfile: &str) -> Vec<Card> {
    let mut p = common(1, obs, seed, "U123", "/s/sdata241/lris1/2024mar15/");
    p.extend([
        text("INSTRUME", instrume),
        text("OUTFILE", outfile),
        int("FRAMENO", obs.frame as i64),
        text("TRAPDOOR", "open"),
        text("FLIMAGIN", "off"),
        text("FLSPECTR", "off"),
        text("FLAMP1", "off"),
        text("FLAMP2", "off"),
        logical("AUTOSHUT", true),
        text("CALNAME", ""),
        float("ELAPTIME", 900.0),
        float("XPOSURE", 900.0),
        text("SLITNAME", "long_1.0"),
        text("GRISNAME", "600/4000"),
        text("GRANAME", "600/7500"),
        float("WAVELEN", 7000.0),
        text("DICHNAME", "560"),
        text("BLUFILT", "clear"),
        text("REDFILT", "clear"),
        text("PONAME", "LRIS"),
        float("IROT2ANG", 12.0),
        text("DATE-BEG", &format!("{}T{}", obs.date, obs.utc)),
        float("MJD", 60384.35),
    ]);
    p.extend(telemetry("LRTMP", 140, seed));
    p
}

fn lris_blue(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let (rows, precol, data, postpix) = match size {
        Size::Full => (4096, 51, 1024, 80),
        Size::Small => (256, 4, 64, 10),
    };
    let cols = precol + data + postpix;
    let outfile = format!("b{}_", obs.yymmdd());
    let mut p = lris_common(obs, seed, "LRISBLUE", &outfile);
    p.extend([text("BINNING", "1,1"), int("PRECOL", precol as i64), int("POSTPIX", postpix as i64), int("PRELINE", 0), int("POSTLINE", 0)]);
    let mut f = Frame { hdus: vec![empty_primary(p)] };
    for amp in 0..4i64 {
        // two CCDs, two amplifiers each; the second amplifier of a CCD reads from the right
        let (x1, x2) = (amp * 1024 + 1, (amp + 1) * 1024);
        let detsec = if amp % 2 == 1 { sec(x2, x1, 1, rows as i64) } else { sec(x1, x2, 1, rows as i64) };
        let px = ccd(cols, rows, precol, postpix, 350.0, 5, seed + amp as u64);
        let ext = vec![text("EXTNAME", &format!("VidInp{}", amp + 1)), text("DETSEC", &detsec), float("CRVAL1", 0.0), float("CRVAL2", 0.0), float("CD1_1", 1.0), float("CD2_2", 1.0), float("CRPIX1", 1.0), float("CRPIX2", 1.0)];
        f.hdus.push(u16_image(false, cols, rows, px, ext));
    }
    (format!("{outfile}{:04}.fits", obs.frame), f)
}

fn lris_red(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let side = match size {
        Size::Full => 4096,
        Size::Small => 256,
    };
    let outfile = format!("r{}_", obs.yymmdd());
    let p = lris_common(obs, seed, "LRIS", &outfile);
    let px = ccd(side, side, 0, 0, 350.0, 8, seed);
    (format!("{outfile}{:04}.fits", obs.frame), Frame { hdus: vec![u16_image(true, side, side, px, p)] })
}

fn mosfire(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let side = match size {
        Size::Full => 2048,
        Size::Small => 128,
    };
    let datafile = format!("m{}_{:04}", obs.yymmdd(), obs.frame);
    let mut p = common(1, obs, seed, "U123", "/s/sdata1300/mosfire2/2024mar15/");
    p.extend([
        text("INSTRUME", "MOSFIRE"),
        text("DATAFILE", &datafile),
        int("FRAMENUM", obs.frame as i64),
        text("OBSMODE", "H-spectroscopy"),
        text("FILTER", "H"),
        float("TRUITIME", 119.3),
        int("COADDS", 1),
        int("FLATSPEC", 0),
        text("FLIMAGIN", "off"),
        text("FLSPECTR", "off"),
        int("PWSTATA7", 0),
        int("PWSTATA8", 0),
        text("MDCMECH", "Dust Cover"),
        text("MDCSTAT", "OK"),
        text("MDCNAME", "Open"),
        int("SATURATE", 32000),
        text("MASKNAME", "NGC1068_mask"),
    ]);
    // the configurable slit unit: 46 bars, position and status each
    for b in 1..=92 {
        p.push(float(&format!("B{b:02}POS"), 100.0 + b as f64 * 1.5));
        p.push(text(&format!("B{b:02}STAT"), "OK"));
    }
    p.extend(telemetry("MFTMP", 100, seed));
    let mut cards = image_cards(true, -32, &[side as u64, side as u64]);
    cards.extend(p);
    let mut f = Frame { hdus: vec![FrameHdu { cards, data: Data::F32(sky(side, side, 150.0, seed)) }] };
    let slits: Vec<Vec<Vec<u8>>> = (1..=12)
        .map(|i| vec![a(&format!("{i}"), 4), e(0.7), e(7.0 + i as f32 * 0.1), j(i), a(&format!("target{i}"), 16)])
        .collect();
    f.hdus.push(table("MECHANICAL_SLIT_CONFIGURATION", &[("Slit_Number", "4A", 4), ("Slit_width", "1E", 4), ("Slit_length", "1E", 4), ("Bar", "1J", 4), ("Target_in_Slit", "16A", 16)], &slits));
    let targets: Vec<Vec<Vec<u8>>> = (1..=12).map(|i| vec![a(&format!("target{i}"), 16), e(18.0 + i as f32 * 0.2), j(i)]).collect();
    f.hdus.push(table("SCIENCE_TARGET_LIST", &[("Target_Name", "16A", 16), ("Magnitude", "1E", 4), ("Priority", "1J", 4)], &targets));
    (format!("{datafile}.fits"), f)
}

fn nirc2(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let side = match size {
        Size::Full => 1024,
        Size::Small => 64,
    };
    let filename = format!("n{:04}.fits", obs.frame);
    let mut p = common(2, obs, seed, "U123", "/s/sdata903/nirc2eng/2024mar15/");
    p.extend([
        text("INSTRUME", "NIRC2"),
        text("FILENAME", &filename),
        text("IMTYPE", "object"),
        text("CAMNAME", "narrow"),
        text("GRSNAME", "clear"),
        float("MAXWAVE", 2.3),
        float("MINWAVE", 1.95),
        float("CENWAVE", 2.12),
        int("COADDS", 10),
        float("ITIME", 2.0),
        text("SHRNAME", "open"),
        text("OBSFNAME", "telescope"),
        text("PSINAME", "open"),
        text("PSONAME", "open"),
        text("ROTMODE", "position angle"),
    ]);
    p.extend(telemetry("N2TMP", 100, seed));
    let mut cards = image_cards(true, 32, &[side as u64, side as u64]);
    cards.extend(p);
    let px: Vec<i32> = sky(side, side, 2000.0, seed).iter().map(|v| *v as i32).collect();
    (filename, Frame { hdus: vec![FrameHdu { cards, data: Data::I32(px) }] })
}

fn nirspec(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let side = match size {
        Size::Full => 2048,
        Size::Small => 128,
    };
    let datafile = format!("nspec{}_{:04}", obs.yymmdd(), obs.frame);
    let mut p = common(2, obs, seed, "U123", "/s/sdata600/nspec3/2024mar15/");
    p.extend([
        text("INSTRUME", "NIRSPEC"),
        text("CAMERA", "spec"),
        text("DATAFILE", &datafile),
        int("FRAMENUM", obs.frame as i64),
        text("OBSTYPE", "object"),
        float("TRUITIME", 300.0),
        float("ITIME", 300.0),
        int("COADDS", 1),
        text("SLITNAME", "0.432x12"),
        text("FILTER", "NIRSPEC-5"),
        float("PSCALE", 0.013),
        text("CALMPOS", "out"),
        text("CALPPOS", "out"),
    ]);
    p.extend(telemetry("NSTMP", 120, seed));
    let mut cards = image_cards(true, -32, &[side as u64, side as u64]);
    cards.extend(p);
    (format!("{datafile}.fits"), Frame { hdus: vec![FrameHdu { cards, data: Data::F32(sky(side, side, 80.0, seed)) }] })
}

fn osiris(size: Size, obs: &Obs, seed: u64) -> (String, Frame) {
    let side = match size {
        Size::Full => 2048,
        Size::Small => 128,
    };
    let datafile = format!("i{}_a{:03}001", obs.yymmdd(), obs.frame);
    let mut p = common(1, obs, seed, "U123", "/s/sdata1100/osiris7/2024mar15/");
    p.extend([
        text("INSTRUME", "OSIRIS"),
        text("INSTR", "imag"),
        text("DATAFILE", &datafile),
        int("FRAMENUM", obs.frame as i64),
        text("IFILTER", "Kp"),
        text("SFILTER", "Kbb"),
        float("TRUITIME", 60.0),
        int("COADDS", 1),
        int("SATURATE", 50000),
        float("PCUX", 0.0),
        float("PCUY", 0.0),
        float("PCUZ", 0.0),
        text("FLAMP1", "off"),
        text("FLAMP2", "off"),
        text("ROTMODE", "position angle"),
        text("PONAME", "osimg"),
        float("SSCALE", 0.035),
        float("SHTRANG", 0.5),
    ]);
    p.extend(telemetry("OSTMP", 140, seed));
    let mut cards = image_cards(true, -32, &[side as u64, side as u64]);
    cards.extend(p);
    (format!("{datafile}.fits"), Frame { hdus: vec![FrameHdu { cards, data: Data::F32(sky(side, side, 90.0, seed)) }] })
}

/// How a frame can be damaged (what real files arrive with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    MissingEnd,
    TruncatedHeader,
    ShortData,
    ZeroBytes,
    NotFits,
    DuplicatedKeywords,
    StringNumbers,
    LowercaseLogicals,
    ChecksumMismatch,
}

pub const DAMAGES: [Damage; 9] = [
    Damage::MissingEnd,
    Damage::TruncatedHeader,
    Damage::ShortData,
    Damage::ZeroBytes,
    Damage::NotFits,
    Damage::DuplicatedKeywords,
    Damage::StringNumbers,
    Damage::LowercaseLogicals,
    Damage::ChecksumMismatch,
];

/// Damaged bytes of a frame.
/// The SCALES files: an up-the-ramp cube of the IFS or the imager, or the
/// 2-D ramp fit (`_qramp`) the quick-look writes next to an IFS cube.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scales {
    Ifs,
    Imager,
    Qramp,
}

/// A SCALES frame (H2RG, 2048 × 2048): reads × rows × columns of uint16
/// (BZERO 32768) — a fixed bias pattern in the first read, signal (a smooth
/// illumination pattern, stars, sky noise) accumulating up the ramp, read
/// noise, so the last read minus the first is the scene, with negative
/// differences in its dark parts — or the float32 slope image of a ramp fit. Real cubes hold up to ~52 reads; the
/// sample has 4 (3 small) to keep the demo quick. Header keywords and
/// values after the examples of KOA_SCALES_Keyword_Table.txt.
fn scales(size: Size, obs: &Obs, seed: u64, kind: Scales) -> (String, Frame) {
    let (side, reads) = match size {
        Size::Full => (2048, 4),
        Size::Small => (64, 3),
    };
    let ifs = kind != Scales::Imager;
    let number = 5342 + obs.frame;
    let prefix = if ifs { "ss" } else { "si" };
    let folder = if ifs { "IFS" } else { "IM" };
    let stem = format!("{prefix}{}_{number:05}", obs.yymmdd());
    let name = if kind == Scales::Qramp { format!("{stem}_qramp.fits") } else { format!("{stem}.fits") };
    let mut p = common(2, obs, seed, "ENG", &format!("/data20/CD5/{folder}"));
    p.retain(|c| c.key != "UTC" && c.key != "PROGNAME");
    p.extend([
        text("INSTRUME", "scales"),
        text("CAMERA", if ifs { "IFS" } else { "IM" }),
        text("UT", &obs.utc),
        text("PROGNAM", "ENG"),
        text("OFNAME", &format!("/data20/CD5/{folder}/{name}")),
        text("OUTDIR", &format!("/data20/CD5/{folder}")),
        int("OBSNUM", number as i64),
        int("FRAMENO", number as i64),
        text("IMTYPE", "object"),
        text("IMTYPE_I", "None"),
        text("IMTYPE_S", "None"),
        text("OBSMODE", if ifs { "IFS Spectrograph" } else { "Imager" }),
        text("FILTER", if ifs { "K" } else { "Kp" }),
        text("MODSLNAM", if ifs { "MedRes" } else { "Imager" }),
        int("MODSLORD", 1),
        text("LENSLNAM", "MedRes"),
        text("DSPRSNAM", "M-grating"),
        text("LYOTNAM", "Open"),
        text("CSLIDNAM", "Pupil"),
        text("IFSFWNAM", "Unknown"),
        text("IMGFWNAM", "Open"),
        text("ACQMODE", "UTR"),
        text("ASIC-FW", "Standard_IFS_Fast_Gain9_5MHz.mcd"),
        text("MACIE-FW", "MACIE_Registers_Fast_Cryo.mrf"),
        text("MCLOCK", "9.0 MHz"),
        text("PCLOCK", "1.8 MHz"),
        int("NREADS", reads as i64),
        int("NGROUPS", 1),
        int("NRAMPS", 1),
        int("NRESETS", 0),
        int("NDROPS", 0),
        float("ITIME", 0.5825422222222222),
        float("EXPTIME", 30.0),
        float("REXPTIME", 30.292195555555555),
        text("DATE-BEG", &format!("{}T{}", obs.date, obs.utc)),
        float("MJD", 60384.34808),
        text("STATEID", "Open_K_Unknown_Imager-Flat_Fast 1.0s 12-bit_MedRes_Mirror_Unknown_Unknown_Unknown"),
        text("STATENAM", "<undef>"),
        logical("STOPPED", false),
        logical("TESTMODE", false),
        text("THISEXT", "quicklook"),
        float("PRES1", 7.37e-06),
        float("IMGDET1", 37.497),
        float("IMGDET2", 37.427),
        text("HEART_01", "Heartbeat active"),
    ]);
    p.extend(telemetry("SCTMP", 90, seed));
    let sky = sky(side, side, 400.0, seed);
    let flux: Vec<f32> = sky
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (x, y) = ((i % side) as f32, (i / side) as f32);
            1200.0 + 1400.0 * (x / 97.0).sin() * (y / 131.0).cos() + (f - 400.0) * 4.0
        })
        .collect();
    let mut rng = Rng::new(seed ^ 0x5CA1E5);
    let hdu = if kind == Scales::Qramp {
        let mut cards = image_cards(true, -32, &[side as u64, side as u64]);
        cards.extend(p);
        FrameHdu { cards, data: Data::F32(flux.iter().map(|f| f / 30.0).collect()) }
    } else {
        let bias: Vec<f32> = (0..side * side).map(|i| 9000.0 + ((i * 2654435761) % 4096) as f32).collect();
        let mut px = Vec::with_capacity(side * side * reads);
        for k in 0..reads {
            let t = k as f32 / (reads - 1) as f32;
            px.extend(bias.iter().zip(&flux).map(|(b, f)| (b + t * f + rng.noise() * 12.0).clamp(0.0, 65535.0) as u16));
        }
        let mut cards = image_cards(true, 16, &[side as u64, side as u64, reads as u64]);
        cards.insert(7, float("BZERO", 32768.0));
        cards.insert(8, float("BSCALE", 1.0));
        cards.extend(p);
        FrameHdu { cards, data: Data::U16(px) }
    };
    (name, Frame { hdus: vec![hdu] })
}

pub fn damaged(frame: &Frame, damage: Damage) -> Vec<u8> {
    let mut f = frame.clone();
    match damage {
        Damage::DuplicatedKeywords => {
            let c = f.hdus[0].cards.iter().find(|c| c.key == "OBJECT" || c.key == "TARGNAME").cloned();
            if let Some(mut c) = c {
                c.value = HValue::Text("a different target".into());
                c.raw = None;
                f.hdus[0].cards.push(c);
            }
        }
        Damage::StringNumbers => {
            for c in f.hdus[0].cards.iter_mut().filter(|c| matches!(c.key.as_str(), "AIRMASS" | "EL" | "AZ" | "ELAPTIME")) {
                c.value = HValue::Text(c.value.py_str());
                c.raw = None;
            }
        }
        Damage::ChecksumMismatch => {
            f.hdus[0].cards.push(text("CHECKSUM", "ZZZZZZZZZZZZZZZZ"));
            f.hdus[0].cards.push(text("DATASUM", "12345"));
        }
        _ => {}
    }
    let mut bytes = f.to_bytes();
    let end = bytes.chunks(80).position(|c| c.starts_with(b"END ")).map(|i| i * 80).unwrap_or(0);
    match damage {
        Damage::MissingEnd => bytes[end..end + 3].copy_from_slice(b"   "),
        Damage::TruncatedHeader => bytes.truncate(end / 2 / 80 * 80 + 37),
        Damage::ShortData => bytes.truncate(bytes.len() - bytes.len() / 3),
        Damage::ZeroBytes => bytes.clear(),
        Damage::NotFits => bytes = b"#!/bin/sh\necho this is a script, not an image\n".to_vec(),
        Damage::LowercaseLogicals => {
            // EXTEND = T → t (not FITS-valid)
            if let Some(i) = bytes[..end].chunks(80).position(|c| c.starts_with(b"EXTEND  =")) {
                let card = &mut bytes[i * 80..i * 80 + 80];
                if let Some(p) = card.iter().rposition(|b| *b == b'T') {
                    card[p] = b't';
                }
            }
        }
        _ => {}
    }
    bytes
}
