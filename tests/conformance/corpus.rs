//! The malformed-FITS corpus of ../shared/data: every file is processed or
//! ends with a specific status code — never a panic, never a lost file.
//!
//! Each file runs twice: as it is (not a NIRES file: its KOAID cannot be made,
//! or it is not FITS at all), and "NIRES-ified" — the identifying NIRES cards
//! added to its primary header while every other byte, including the damage,
//! is kept — so the whole pipeline (statistics on compressed, scaled and
//! BLANK images, extension tables, duplicated keywords…) runs on it.

use std::path::{Path, PathBuf};

use koa_dep::db::Status;
use koa_dep::fits::{self, HValue};
use koa_dep::pipeline::JobOptions;
use koa_dep_tests::*;

fn corpus() -> Vec<PathBuf> {
    let data = data_dir();
    let mut files: Vec<_> = ["astropy", "fitsio-py", "kcwidrp", "keckdrpframework", "nirc2-lev0", "pypeit"]
        .iter()
        .flat_map(|d| std::fs::read_dir(data.join(d)).unwrap().flatten().map(|e| e.path()))
        .collect();
    files.sort();
    files
}

/// No services, but the telescope configured: without it the run stops at
/// set_telnr (TELNR_API_ERROR) before the rules these files exercise.
fn nires_telescope(s: &Scratch) -> koa_dep::config::Config {
    let mut cfg = s.cfg.clone();
    cfg.instruments.entry("NIRES".into()).or_default().telescope = Some(2);
    cfg
}

/// Codes a file may end with when archived as it is.
const RAW_OUTCOMES: [&str; 5] = ["KOAID_CREATE_FAIL", "UNREADABLE_FITS", "BAD_OFNAME", "MISMATCHED_FILENAME", "CORRUPTED_HDU"];

#[test]
fn every_file_as_it_is_ends_with_a_specific_code() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, nires_telescope(&s));
    for f in corpus() {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let r = archive(&rt, &a, "NIRES", &f, JobOptions::default());
        let code = r.status_code.clone().unwrap_or_default();
        assert!(RAW_OUTCOMES.contains(&code.as_str()), "{name}: {} {code} {:?}", r.status, r.message);
        assert!(matches!(r.status, Status::Invalid | Status::Error), "{name}");
        // the row is kept with that status: nothing is silently lost
        let row = rt.block_on(a.db.get(r.id)).unwrap().unwrap();
        assert_eq!(row.status, r.status.as_str(), "{name}");
        assert_eq!(row.status_code.as_deref(), Some(code.as_str()), "{name}");
        let invalid = matches!(code.as_str(), "UNREADABLE_FITS" | "CORRUPTED_HDU" | "BAD_OFNAME" | "MISMATCHED_FILENAME");
        assert_eq!(r.status == Status::Invalid, invalid, "{name}: {code}");
        let all = codes(&r);
        match name.as_str() {
            "checksum.fits" => assert!(!all.contains(&"CHECKSUM_MISMATCH".to_string()), "{name}: {all:?}"),
            "checksum_false.fits" => assert!(all.contains(&"CHECKSUM_MISMATCH".to_string()), "{name}: {all:?}"),
            _ => {}
        }
    }
}

/// Add the NIRES identity to a file's primary header, keeping every other byte.
fn nires_ify(src: &Path, dst: &Path) -> bool {
    let Ok(file) = fits::load(src) else { return false };
    let mut primary = file.hdus[0].clone();
    let stem = dst.file_stem().unwrap().to_string_lossy().to_string();
    for (k, v) in [
        ("INSTRUME", HValue::Text("NIRES".into())),
        ("INSTR", HValue::Text("spec".into())),
        ("DATE-OBS", HValue::Text("2024-03-15".into())),
        ("UTC", HValue::Text("08:21:14.52".into())),
        ("DATAFILE", HValue::Text(stem)),
        ("FRAMENUM", HValue::Int(7)),
        ("ITIME", HValue::Float(10.0)),
        ("COADDS", HValue::Int(1)),
        ("OBSTYPE", HValue::Text("object".into())),
        ("PROGNAME", HValue::Text("C272".into())),
        ("SATURATE", HValue::Int(30000)),
    ] {
        primary.set(k, v, "");
    }
    primary.remove("KOAID");
    let mut out = fits::write::header_bytes(&primary);
    let bytes = std::fs::read(src).unwrap();
    out.extend_from_slice(&bytes[primary.data_start as usize..]);
    std::fs::write(dst, out).unwrap();
    true
}

/// Damage the manifest documents, and the code it must produce.
const EXPECT: [(&str, &str); 5] = [
    ("569_0000.fits", "DUPLICATE_KEYWORD"),
    ("double_ext.fits", "DUPLICATE_KEYWORD"),
    ("header_newlines.fits", "DUPLICATE_KEYWORD"),
    ("verify.fits", "UNREADABLE_FITS"),
    ("outside_sky.hdr", "CORRUPTED_HDU"),
];

#[test]
fn every_loadable_file_runs_the_whole_pipeline() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, nires_telescope(&s));
    let mut ran = 0;
    for (i, f) in corpus().into_iter().enumerate() {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let dst = s.path(&format!("in/n{i:03}.fits"));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        if !nires_ify(&f, &dst) {
            continue;
        }
        ran += 1;
        let r = archive(&rt, &a, "NIRES", &dst, JobOptions::default());
        let code = r.status_code.clone().unwrap_or_default();
        let all = codes(&r);
        println!("{name:<42} {:<10} {code:<22} {all:?}", r.status.as_str());
        if let Some((_, want)) = EXPECT.iter().find(|(n, _)| *n == name) {
            assert!(all.iter().any(|c| c == want), "{name}: expected {want} among {all:?}");
        }
        match r.status {
            Status::Complete => {
                let lev0 = s.path("archive/NIRES/20240315/lev0");
                let koaid = r.koaid.clone().unwrap();
                assert!(lev0.join(format!("{koaid}.fits")).is_file(), "{name}");
                assert!(lev0.join(format!("{koaid}.md5sum.table")).is_file(), "{name}");
                // the archived file reads back with the same data bytes
                let a0 = fits::load(&dst).unwrap();
                let b0 = fits::load(&lev0.join(format!("{koaid}.fits"))).unwrap();
                assert_eq!(a0.hdus.len(), b0.hdus.len(), "{name}");
                let (ab, bb) = (std::fs::read(&dst).unwrap(), std::fs::read(lev0.join(format!("{koaid}.fits"))).unwrap());
                for (x, y) in a0.hdus.iter().zip(&b0.hdus) {
                    let (xs, ys) = (x.data_start as usize, y.data_start as usize);
                    let n = x.data_len as usize;
                    assert_eq!(&ab[xs..xs + n], &bb[ys..ys + n], "{name}: HDU {} data changed", x.index);
                }
            }
            Status::Invalid => assert!(["CORRUPTED_HDU", "UNREADABLE_FITS", "DUPLICATE_FILE"].contains(&code.as_str()), "{name}: {code}"),
            other => panic!("{name}: {other} {code} {:?}", r.message),
        }
    }
    assert!(ran >= 35, "only {ran} corpus files could be NIRES-ified");
}
