//! SCALES end to end: the statistics of a read cube, and the `_qramp`
//! pairing (defect S3): a raw cube and its ramp fit share a base KOAID, and
//! processing one never lists, transfers or deletes the other's products.
//! (The three kinds of file with KOA's keyword table are in the conformance
//! suite, which reads the shared data.)

use std::path::{Path, PathBuf};

use koa_dep::db::Status;
use koa_dep::fits::{self, HValue};
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::frames::{Size, frame};
use koa_dep_tests::*;

fn write(s: &Scratch, kind: &str, size: Size, n: u32) -> PathBuf {
    let (name, f) = frame(kind, size, n).unwrap();
    let p = s.path(&format!("sdata/scales/{name}"));
    f.write(&p).unwrap();
    p
}

/// Mean of the CDS image (last read − first read) of a cube file, in f64,
/// straight from the bytes (BITPIX 16, BZERO 32768).
fn cds_mean(path: &Path) -> f64 {
    let h = fits::load(path).unwrap();
    let p = &h.hdus[0];
    let bytes = std::fs::read(path).unwrap();
    let (cols, rows, reads) = (p.shape[0] as usize, p.shape[1] as usize, p.shape[2] as usize);
    let plane = |k: usize| {
        let start = p.data_start as usize + k * cols * rows * 2;
        bytes[start..start + cols * rows * 2].chunks_exact(2).map(|b| i16::from_be_bytes([b[0], b[1]]) as f64 + 32768.0).collect::<Vec<f64>>()
    };
    let (first, last) = (plane(0), plane(reads - 1));
    last.iter().zip(&first).map(|(l, f)| l - f).sum::<f64>() / (cols * rows) as f64
}

#[test]
fn cube_statistics_are_of_the_cds_image() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    let input = write(&s, "SCALES-IFS", Size::Small, 20);
    let r = archive(&rt, &a, "SCALES", &input, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let koaid = r.koaid.unwrap();
    let lev0 = fits::load(&s.path(&format!("archive/SCALES/20240315/lev0/{koaid}.fits"))).unwrap();
    let mean = match lev0.hdus[0].value("IMAGEMN") {
        Some(HValue::Float(f)) => *f,
        other => panic!("IMAGEMN {other:?}"),
    };
    let want = cds_mean(&input);
    assert!((mean - want).abs() < 0.01, "IMAGEMN {mean} is the CDS mean {want} (S14), not the whole cube's");
}

#[test]
fn a_raw_cube_and_its_ramp_fit_keep_their_own_products() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    // the same exposure: the quick-look's ramp fit keeps the cube's DATE-OBS/UT
    let raw = write(&s, "SCALES-IFS", Size::Small, 30);
    let fit = write(&s, "SCALES-QRAMP", Size::Small, 30);
    let rq = archive(&rt, &a, "SCALES", &fit, JobOptions::default());
    assert_eq!(rq.status, Status::Complete, "{:?}", rq.diagnostics);
    let rr = archive(&rt, &a, "SCALES", &raw, JobOptions::default());
    assert_eq!(rr.status, Status::Complete, "{:?}", rr.diagnostics);
    let (kr, kq) = (rr.koaid.clone().unwrap(), rq.koaid.clone().unwrap());
    assert_eq!(kq, format!("{kr}_qramp"), "one base KOAID");
    let dir = s.path("archive/SCALES/20240315/lev0");
    let listed = |k: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(format!("{k}.md5sum.table"))).unwrap().lines().map(|l| l[34..].to_string()).collect()
    };
    let ext = |k: &str| vec![format!("{k}.fits"), format!("{k}.jpg")];
    assert_eq!(listed(&kr), ext(&kr), "the raw cube's md5 table lists its own products only");
    assert_eq!(listed(&kq), ext(&kq));
    for p in &rr.products {
        assert!(!p.to_string_lossy().contains("_qramp"), "raw products {:?}", rr.products);
    }
    // reprocessing the raw cube removes its stale products, never the fit's
    let fit_files: Vec<(PathBuf, Vec<u8>)> = ["fits", "jpg", "md5sum.table"]
        .iter()
        .map(|e| dir.join(format!("{kq}.{e}")))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let r2 = archive(&rt, &a, "SCALES", &raw, JobOptions { reprocess: true, ..Default::default() });
    assert_eq!(r2.status, Status::Complete, "{:?}", r2.diagnostics);
    assert_eq!(r2.koaid.as_deref(), Some(kr.as_str()));
    for (p, b) in &fit_files {
        assert_eq!(std::fs::read(p).ok().as_ref(), Some(b), "{} survives the raw cube's reprocess unchanged", p.display());
    }
    // and the fit's reprocess leaves the raw cube's products alone
    let raw_fits = std::fs::read(dir.join(format!("{kr}.fits"))).unwrap();
    let r3 = archive(&rt, &a, "SCALES", &fit, JobOptions { reprocess: true, ..Default::default() });
    assert_eq!(r3.status, Status::Complete, "{:?}", r3.diagnostics);
    assert_eq!(std::fs::read(dir.join(format!("{kr}.fits"))).unwrap(), raw_fits);
    assert_eq!(listed(&kr), ext(&kr));
}
