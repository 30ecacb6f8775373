//! The gold case: the raw NIRES frame synthesised from the reference's gold
//! metadata table, archived with services answering what the reference's
//! did, must reproduce the gold metadata table byte for byte except
//! DQA_DATE, DQA_VERS and FILESIZE_MB.

use koa_dep::db::Status;
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::gold::{parse_ipac, write_gold_input};
use koa_dep_tests::*;

const GOLD: &str = "gold/nires/NR.20190615.12571.36";
const SKIP: [&str; 3] = ["DQA_DATE", "DQA_VERS", "FILESIZE_MB"];

/// Column spans from the `|` positions of the first header line.
fn spans(header: &str) -> Vec<(String, usize, usize)> {
    let bars: Vec<usize> = header.char_indices().filter(|(_, c)| *c == '|').map(|(i, _)| i).collect();
    bars.windows(2).map(|w| (header[w[0] + 1..w[1]].trim().to_string(), w[0], w[1])).collect()
}

#[test]
fn nires_metadata_table_matches_the_gold_file() {
    let data = data_dir();
    let s = Scratch::new();
    let raw = s.path("sdata1500/nires9/2019jun15/s190615_0020.fits");
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    write_gold_input(&data, &raw).unwrap();
    let mut cfg = s.cfg.clone();
    cfg.archive.keyword_tables = Some(data.join("keyword-tables/gold-era"));
    cfg.archive.dep_version = "0.2.5".into();
    cfg.services.fixture = Some(repo().join("tests/fixtures/gold-services.json"));
    let rt = runtime();
    let a = archiver(&rt, cfg);
    let r = archive(&rt, &a, "NIRES", &raw, JobOptions::default());
    assert_eq!(r.koaid.as_deref(), Some("NR.20190615.12571.36"), "{r:#?}");
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);

    let ours = std::fs::read_to_string(s.path("archive/NIRES/20190615/lev0/NR.20190615.12571.36.metadata.table")).unwrap();
    let gold = std::fs::read_to_string(data.join(format!("{GOLD}.metadata.table"))).unwrap();
    let (ol, gl): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), gold.lines().collect());
    assert_eq!(ol.len(), gl.len());
    for i in 0..4 {
        assert_eq!(ol[i], gl[i], "header line {}", i + 1);
    }
    // the data line byte for byte, with only the skipped columns' cells masked
    let cols = spans(gl[0]);
    assert_eq!(ol[4].len(), gl[4].len(), "data line length");
    let mask = |line: &str| {
        let mut b = line.as_bytes().to_vec();
        for (name, a, e) in &cols {
            if SKIP.contains(&name.as_str()) {
                b[a + 1..*e].fill(b'#');
            }
        }
        String::from_utf8(b).unwrap()
    };
    let (om, gm) = (mask(ol[4]), mask(gl[4]));
    if om != gm {
        for (name, a, e) in &cols {
            assert_eq!(om.get(*a..*e), gm.get(*a..*e), "column {name} (with its separator)");
        }
        assert_eq!(om, gm);
    }
    assert!(cols.len() == gl[0].matches('|').count() - 1 && cols.len() > 50, "{} columns", cols.len());
    // the whole file, line ends included, apart from those cells
    let whole = |t: &str, data: &str| t.replacen(data, "", 1);
    assert_eq!(whole(&ours, ol[4]), whole(&gold, gl[4]), "header lines and line ends");
    assert!(ours.ends_with('\n') && !ours.ends_with("\n\n"));
    // the skipped columns are still sensible
    let row = parse_ipac(&ours).unwrap();
    let get = |c: &str| row.values[row.columns.iter().position(|(n, _)| n == c).unwrap()].trim().to_string();
    assert_eq!(get("DQA_VERS"), "0.2.5");
    assert!(get("FILESIZE_MB").parse::<f64>().unwrap() > 8.0);
    assert_eq!(get("DQA_DATE").len(), 19);
}

/// (width, height, components) of a baseline or progressive JPEG.
fn jpeg_geometry(b: &[u8]) -> Option<(u16, u16, u8)> {
    let mut i = 2;
    while i + 9 < b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if matches!(marker, 0xC0 | 0xC1 | 0xC2) {
            let h = u16::from_be_bytes([b[i + 5], b[i + 6]]);
            let w = u16::from_be_bytes([b[i + 7], b[i + 8]]);
            return Some((w, h, b[i + 9]));
        }
        i += 2 + len;
    }
    None
}

#[test]
fn nires_md5_table_lists_the_gold_products() {
    let data = data_dir();
    let s = Scratch::new();
    let raw = s.path("sdata1500/nires9/2019jun15/s190615_0020.fits");
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    write_gold_input(&data, &raw).unwrap();
    let mut cfg = s.cfg.clone();
    cfg.archive.keyword_tables = Some(data.join("keyword-tables/gold-era"));
    cfg.services.fixture = Some(repo().join("tests/fixtures/gold-services.json"));
    let rt = runtime();
    let a = archiver(&rt, cfg);
    let r = archive(&rt, &a, "NIRES", &raw, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let lev0 = s.path("archive/NIRES/20190615/lev0");
    let ours = std::fs::read_to_string(lev0.join("NR.20190615.12571.36.md5sum.table")).unwrap();
    let gold = std::fs::read_to_string(data.join(format!("{GOLD}.md5sum.table"))).unwrap();
    let names = |t: &str| t.lines().map(|l| l[34..].to_string()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&gold));
    for line in ours.lines() {
        let (md5, name) = (&line[..32], &line[34..]);
        assert_eq!(md5, koa_dep::fits::write::md5_file(&lev0.join(name)).unwrap(), "{name}");
    }
    // the preview has the gold JPEG's pixel size (one output pixel per data pixel)
    let gold_jpg = jpeg_geometry(&std::fs::read(data.join(format!("{GOLD}.jpg"))).unwrap()).unwrap();
    let our_jpg = jpeg_geometry(&std::fs::read(lev0.join("NR.20190615.12571.36.jpg")).unwrap()).unwrap();
    assert_eq!(gold_jpg, (2048, 1024, 3));
    assert_eq!((our_jpg.0, our_jpg.1), (gold_jpg.0, gold_jpg.1), "JPEG size");
    assert_eq!(our_jpg.2, 1, "grey JPEG");
}
