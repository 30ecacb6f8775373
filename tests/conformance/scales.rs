//! SCALES with KOA's keyword table (../shared/data): the IFS and imager
//! cubes and the ramp fit through the whole level-0 path; the metadata
//! table's columns, in order and as wide as the table says, against the
//! table read independently here (CRLF and LF line ends, NExScI rows
//! dropped), and the values the SCALES rules write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use koa_dep::db::Status;
use koa_dep::fits::{self, HValue};
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::frames::{Size, frame};
use koa_dep_tests::*;

/// (keyword, width) of every metadata column of a KOA keyword table, read
/// the way KOA reads it: tab-separated, CRLF or LF line ends, rows without
/// a keyword and NExScI rows dropped.
fn table_columns(path: &Path) -> Vec<(String, usize)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let at = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (kw, src, width) = (at("FITSKeyword"), at("Source"), at("MetadataWidth"));
    lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.len() > width && !f[kw].trim().is_empty() && f[src].trim() != "NExScI")
        .map(|f| (f[kw].trim().to_string(), f[width].trim().parse::<f64>().unwrap() as usize))
        .collect()
}

/// The metadata table's columns: (name, width) from its first `|` line,
/// and the values of its data line by name.
fn metadata(path: &Path) -> (Vec<(String, usize)>, BTreeMap<String, String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head = lines.next().unwrap();
    let cols: Vec<(String, usize)> =
        head.trim_matches('|').split('|').map(|c| (c.trim().to_string(), c.chars().count())).collect();
    let data = lines.find(|l| l.starts_with(' ')).unwrap();
    let mut values = BTreeMap::new();
    let mut at = 0;
    for (name, w) in &cols {
        let cell: String = data.chars().skip(at + 1).take(*w).collect();
        values.insert(name.clone(), cell.trim().to_string());
        at += w + 1;
    }
    (cols, values)
}

fn keyword_tables() -> PathBuf {
    data_dir().join("keyword-tables/head")
}

fn write(s: &Scratch, kind: &str, size: Size, n: u32) -> PathBuf {
    let (name, f) = frame(kind, size, n).unwrap();
    let p = s.path(&format!("sdata/scales/{name}"));
    f.write(&p).unwrap();
    p
}

#[test]
fn ifs_imager_and_ramp_fit_are_archived_with_the_keyword_table() {
    let s = Scratch::new();
    let mut cfg = s.with_services();
    cfg.archive.keyword_tables = Some(keyword_tables());
    let rt = runtime();
    let a = archiver(&rt, cfg);
    let columns = table_columns(&keyword_tables().join("KOA_SCALES_Keyword_Table.txt"));
    assert_eq!(columns.len(), 244, "the table's metadata columns");
    // (sample, prefix, suffix, WAVEBLUE, WAVECNTR, WAVERED, SPECRES, scale)
    let cases = [
        ("SCALES-IFS", "SS", "", "2.0", "2.2", "2.4", "6000.0", "0.02"),
        ("SCALES-IM", "SI", "", "1.95", "2.12", "2.29", "", "0.006"),
        ("SCALES-QRAMP", "SS", "_qramp", "2.0", "2.2", "2.4", "6000.0", "0.02"),
    ];
    for (i, (kind, prefix, suffix, blue, cntr, red, specres, scale)) in cases.iter().enumerate() {
        let input = write(&s, kind, Size::Small, 10 + i as u32);
        let r = archive(&rt, &a, "SCALES", &input, JobOptions::default());
        assert_eq!(r.status, Status::Complete, "{kind}: {:?}", r.diagnostics);
        let c = codes(&r);
        assert!(!c.iter().any(|c| c.starts_with("COMPONENT_") || c == "CODE_ERROR" || c.starts_with("METADATA")), "{kind}: {c:?}");
        let koaid = r.koaid.clone().unwrap();
        assert!(koaid.starts_with(&format!("{prefix}.20240315.")), "{kind}: {koaid}");
        assert_eq!(koaid.ends_with("_qramp"), !suffix.is_empty(), "{kind}: {koaid}");
        let dir = s.path("archive/SCALES/20240315/lev0");
        let lev0 = fits::load(&dir.join(format!("{koaid}.fits"))).unwrap();
        let v = |k: &str| lev0.hdus[0].value(k).cloned();
        assert_eq!(v("KOAID"), Some(HValue::Text(format!("{koaid}.fits"))), "{kind}");
        assert_eq!(v("KOAIMTYP"), Some(HValue::Text("object".into())), "{kind}");
        assert_eq!(lev0.hdus[0].text("OFNAME").as_deref(), input.file_name().and_then(|n| n.to_str()), "{kind}: OFNAME is the file name (S9)");
        assert!(dir.join(format!("{koaid}.jpg")).is_file(), "{kind}: preview {:?}", r.diagnostics);
        let (cols, values) = metadata(&dir.join(format!("{koaid}.metadata.table")));
        let expected: Vec<(String, usize)> = columns.iter().map(|(k, w)| (k.clone(), (*w).max(k.chars().count()))).collect();
        assert_eq!(cols, expected, "{kind}: every column of the table, in order, as wide as the table says");
        for (k, want) in [("WAVEBLUE", blue), ("WAVECNTR", cntr), ("WAVERED", red), ("DISPSCAL", scale), ("SPATSCAL", scale)] {
            assert_eq!(values[k], *want, "{kind}: {k}");
        }
        assert_eq!(values["SPECRES"], if specres.is_empty() { "null" } else { specres }, "{kind}: SPECRES");
        assert_eq!(values["KOAID"], format!("{koaid}.fits"));
        assert_eq!(values["INSTRUME"], "SCALES", "written back upper case (S8)");
        assert_eq!(values["DATLEVEL"], "0");
        assert!(!values["IMAGEMN"].is_empty() && values["IMAGEMN"] != "null", "{kind}: image statistics");
    }
}
