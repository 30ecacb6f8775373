//! Faithfulness of the previews to the reference's renderer: the NIRES and
//! KCWI sample frames are archived, then the same lev-0 files are rendered
//! the reference's way (astropy + matplotlib, scikit-image for KCWI's
//! histogram equalisation) by tests/faithfulness/preview_check.py, and the
//! JPEGs compared (and a SCALES cube's last-minus-first preview against
//! SCALES's own renderer): same size and orientation, Pearson ≥ 0.98, mean absolute
//! difference ≤ 4 grey levels. The NIRES gold JPEG is checked for size and
//! orientation by rebuilding a frame from it and rendering that frame.
//!
//! Needs python3 with numpy, astropy, matplotlib, scikit-image and Pillow
//! (`.ci/run` installs them; `KOA_DEP_PYTHON` picks another interpreter).
//! Fails, never skips, when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use koa_dep::db::Status;
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::frames::{Size, frame};
use koa_dep_tests::*;
use serde_json::Value;

fn python() -> String {
    std::env::var("KOA_DEP_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn script() -> PathBuf {
    repo().join("tests/faithfulness/preview_check.py")
}

/// Run the script; panics with its output when it fails.
fn py(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (set KOA_DEP_PYTHON): {e}", python()));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "preview_check.py {args:?} failed (needs numpy, astropy, matplotlib, scikit-image, Pillow):\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn compare(ours: &Path, theirs: &Path) -> Value {
    serde_json::from_str(py(&["compare", &ours.display().to_string(), &theirs.display().to_string()]).trim()).unwrap()
}

/// Archive a file; returns (lev-0 FITS, its JPEG).
fn archived(s: &Scratch, rt: &tokio::runtime::Runtime, a: &std::sync::Arc<koa_dep::pipeline::Archiver>, instrument: &str, path: &Path) -> (PathBuf, PathBuf) {
    let r = archive(rt, a, instrument, path, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{instrument}: {:?}", r.diagnostics);
    let find = |ext: &str| r.products.iter().find(|p| p.extension().is_some_and(|e| e == ext)).cloned().unwrap_or_else(|| panic!("{instrument}: no .{ext} in {:?}", r.products));
    let _ = s;
    (find("fits"), find("jpg"))
}

#[test]
fn nires_and_kcwi_previews_match_the_reference_renderer() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    for (instrument, mode) in [("NIRES", "asinh"), ("KCWI", "histeq")] {
        let (name, f) = frame(instrument, Size::Full, 3).unwrap();
        let input = s.path(&format!("sdata/{}/{name}", instrument.to_lowercase()));
        f.write(&input).unwrap();
        let (lev0, ours) = archived(&s, &rt, &a, instrument, &input);
        let theirs = s.path(&format!("{instrument}-reference.jpg"));
        py(&["render", "--fits", &lev0.display().to_string(), "--mode", mode, "--out", &theirs.display().to_string()]);
        let c = compare(&ours, &theirs);
        let header = koa_dep::fits::load(&lev0).unwrap();
        let (w, h) = (header.hdus[0].value("NAXIS1").unwrap().py_str(), header.hdus[0].value("NAXIS2").unwrap().py_str());
        assert_eq!((c["a"]["width"].to_string(), c["a"]["height"].to_string()), (w.clone(), h.clone()), "{instrument}: one pixel per data pixel");
        assert_eq!((&c["a"]["width"], &c["a"]["height"]), (&c["b"]["width"], &c["b"]["height"]), "{instrument}: {c}");
        let (r, mad, flipped) = (c["pearson"].as_f64().unwrap(), c["mad"].as_f64().unwrap(), c["pearson_flipped"].as_f64().unwrap());
        assert!(r >= 0.98, "{instrument}: Pearson {r} < 0.98 ({c})");
        assert!(mad <= 4.0, "{instrument}: mean absolute difference {mad} > 4 grey levels ({c})");
        assert!(flipped < r - 0.5, "{instrument}: the orientation must decide the match ({c})");
    }
}

#[test]
fn the_gold_nires_jpeg_has_our_size_and_orientation() {
    let data = data_dir();
    let gold = data.join("gold/nires/NR.20190615.12571.36.jpg");
    let s = Scratch::new();
    // the gold case's header, with pixels rebuilt from the gold JPEG
    let header = s.path("gold-header.fits");
    koa_dep::samples::gold::write_gold_input(&data, &header).unwrap();
    let raw = s.path("sdata1500/nires9/2019jun15/s190615_0020.fits");
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    py(&["from-jpeg", "--jpeg", &gold.display().to_string(), "--header-from", &header.display().to_string(), "--out", &raw.display().to_string()]);
    let rt = runtime();
    let mut cfg = s.with_services();
    cfg.services.fixture = Some(repo().join("tests/fixtures/gold-services.json"));
    let a = archiver(&rt, cfg);
    let (_, ours) = archived(&s, &rt, &a, "NIRES", &raw);
    assert!(ours.ends_with("NR.20190615.12571.36.jpg"), "{}", ours.display());
    let c = compare(&ours, &gold);
    assert_eq!((c["a"]["width"].as_u64(), c["a"]["height"].as_u64()), (Some(2048), Some(1024)), "{c}");
    assert_eq!((&c["a"]["width"], &c["a"]["height"]), (&c["b"]["width"], &c["b"]["height"]), "{c}");
    let (r, flipped) = (c["pearson"].as_f64().unwrap(), c["pearson_flipped"].as_f64().unwrap());
    // zscale + asinh of the gold's grey levels is a different tone curve,
    // so only the structure is compared: it must line up the right way up
    assert!(r >= 0.9 && flipped < 0.5, "{c}");
}

/// Whether a JPEG declares a restart interval (a DRI segment before its scan).
fn has_restart_interval(jpeg: &[u8]) -> bool {
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
    jpeg[..sos].windows(2).any(|w| w == [0xFF, 0xDD])
}

/// A full-size sample frame of `instrument` archived once per strip count
/// (`components.preview_strips`), each into its own archive and store: the
/// JPEGs, and the scratch folder holding them.
fn archived_with_strips(instrument: &str, n: u32, strip_counts: &[u32]) -> (Scratch, Vec<PathBuf>) {
    let s = Scratch::new();
    let rt = runtime();
    let (name, f) = frame(instrument, Size::Full, n).unwrap();
    let input = s.path(&format!("sdata/{}/{name}", instrument.to_lowercase()));
    f.write(&input).unwrap();
    let jpegs = strip_counts
        .iter()
        .map(|&strips| {
            let mut cfg = s.with_services();
            cfg.archive.root = s.path(&format!("archive-{strips}"));
            cfg.database.url = format!("sqlite://{}", s.path(&format!("koa-{strips}.db")).display());
            cfg.components.preview_strips = Some(strips);
            let a = archiver(&rt, cfg);
            archived(&s, &rt, &a, instrument, &input).1
        })
        .collect();
    (s, jpegs)
}

#[test]
fn a_deimos_preview_rendered_in_strips_decodes_to_the_whole_render() {
    // the full 8-CCD mosaic: one instance, then three strips at once
    let (_scratch, jpegs) = archived_with_strips("DEIMOS", 5, &[1, 3]);
    // the job logs name each thumbnail call: one render, or a layout and three strips
    let log = |jpg: &PathBuf| std::fs::read_to_string(jpg.with_extension("log")).unwrap();
    let (log1, log3) = (log(&jpegs[0]), log(&jpegs[1]));
    assert_eq!(log1.matches("thumbnail.render [").count(), 1, "{log1}");
    assert_eq!(log3.matches("thumbnail.render-strip rows ").count(), 3, "{log3}");
    assert_eq!(log3.matches("thumbnail.layout [").count(), 1, "{log3}");
    assert!(!log3.contains("thumbnail.render ["), "{log3}");
    let (whole, striped) = (std::fs::read(&jpegs[0]).unwrap(), std::fs::read(&jpegs[1]).unwrap());
    assert!(!has_restart_interval(&whole), "one instance writes a plain JPEG");
    assert!(has_restart_interval(&striped), "the strips were joined (restart markers)");
    let c = compare(&jpegs[1], &jpegs[0]);
    // DEIMOS at half size: 2 rows of 4 CCDs, rotated
    assert_eq!((&c["a"]["width"], &c["a"]["height"]), (&c["b"]["width"], &c["b"]["height"]), "{c}");
    assert!(c["a"]["width"].as_u64().unwrap() >= 4000 && c["a"]["height"].as_u64().unwrap() >= 4000, "{c}");
    assert_eq!(c["mad"].as_f64(), Some(0.0), "the strips decode to the very pixels of the whole render: {c}");
}

/// The sample cube's CDS image has negative pixels (no signal, read noise):
/// computed in the native unsigned type they would wrap to ~65535 (S4) and
/// the preview would be mostly white; the reference rendering here is
/// computed in floating point.
#[test]
fn cube_preview_matches_a_reference_rendering_of_last_minus_first() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    let (name, f) = frame("SCALES-IFS", Size::Full, 21).unwrap();
    let input = s.path(&format!("sdata/scales/{name}"));
    f.write(&input).unwrap();
    let r = archive(&rt, &a, "SCALES", &input, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let koaid = r.koaid.unwrap();
    let dir = s.path("archive/SCALES/20240315/lev0");
    let ours = dir.join(format!("{koaid}.jpg"));
    let theirs = s.path("scales-reference.jpg");
    py(&["render", "--fits", &dir.join(format!("{koaid}.fits")).display().to_string(), "--mode", "scales", "--out", &theirs.display().to_string()]);
    let c = compare(&ours, &theirs);
    assert_eq!((&c["a"]["width"], &c["a"]["height"]), (&serde_json::json!(1024), &serde_json::json!(1024)), "2048² shrinks to 1024²: {c}");
    assert_eq!((&c["a"]["width"], &c["a"]["height"]), (&c["b"]["width"], &c["b"]["height"]), "{c}");
    let (p, mad, flipped) = (c["pearson"].as_f64().unwrap(), c["mad"].as_f64().unwrap(), c["pearson_flipped"].as_f64().unwrap());
    assert!(p >= 0.98, "Pearson {p} < 0.98 ({c})");
    assert!(mad <= 4.0, "mean absolute difference {mad} > 4 ({c})");
    assert!(flipped < p - 0.1, "row 0 at the top decides the match ({c})");
}

#[test]
fn a_kcwi_preview_is_equalised_in_strips_to_the_whole_render() {
    // histogram equalisation in two strips: each instance counts every pixel
    let (_scratch, jpegs) = archived_with_strips("KCWI", 3, &[1, 2]);
    let log2 = std::fs::read_to_string(jpegs[1].with_extension("log")).unwrap();
    assert_eq!(log2.matches("thumbnail.render-strip rows ").count(), 2, "{log2}");
    let (whole, striped) = (std::fs::read(&jpegs[0]).unwrap(), std::fs::read(&jpegs[1]).unwrap());
    assert!(!has_restart_interval(&whole) && has_restart_interval(&striped));
    let c = compare(&jpegs[1], &jpegs[0]);
    assert_eq!((&c["a"]["width"], &c["a"]["height"]), (&c["b"]["width"], &c["b"]["height"]), "{c}");
    assert_eq!(c["mad"].as_f64(), Some(0.0), "the strips decode to the very pixels of the whole render: {c}");
}
