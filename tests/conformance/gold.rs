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
    let cols = spans(gl[0]);
    let mut compared = 0;
    for (name, a, b) in &cols {
        let (ov, gv) = (ol[4].get(a + 1..*b).unwrap_or(""), gl[4].get(a + 1..*b).unwrap_or(""));
        if SKIP.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(ov, gv, "column {name}");
        compared += 1;
    }
    assert_eq!(compared, cols.len() - SKIP.len());
    assert_eq!(ol[4].len(), gl[4].len(), "data line length");
    assert!(ours.ends_with('\n') && !ours.ends_with("\n\n"));
    // the skipped columns are still sensible
    let row = parse_ipac(&ours).unwrap();
    let get = |c: &str| row.values[row.columns.iter().position(|(n, _)| n == c).unwrap()].trim().to_string();
    assert_eq!(get("DQA_VERS"), "0.2.5");
    assert!(get("FILESIZE_MB").parse::<f64>().unwrap() > 8.0);
    assert_eq!(get("DQA_DATE").len(), 19);
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
}
