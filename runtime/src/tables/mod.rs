//! Product tables: the metadata table (`meta`, from the KOA keyword tables in
//! `keywords`), the extension tables of table HDUs (spec §15) and the MD5
//! table (spec §14).

pub mod keywords;
pub mod meta;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fits::table::Table;

/// Column width of an extension table (spec §15).
pub fn ext_width(tform: &str, name: &str) -> usize {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let w = if tform.len() > 1 && digits(&tform[1..]) {
        tform[1..].parse().unwrap_or(24)
    } else if tform.len() > 1 && digits(&tform[..tform.len() - 1]) {
        tform[..tform.len() - 1].parse().unwrap_or(24)
    } else {
        24
    };
    w.max(16).max(name.chars().count())
}

/// Text of `<KOAID>.ext<i>.<EXTNAME>.tbl`.
pub fn ext_table_text(extname: &str, t: &Table) -> String {
    let widths: Vec<usize> = t.columns.iter().map(|c| ext_width(&c.tform, &c.name)).collect();
    let mut out = format!("\\ Extended Header Name: {extname}\n");
    let row = |out: &mut String, f: &dyn Fn(usize) -> String| {
        for (i, w) in widths.iter().enumerate() {
            out.push('|');
            out.push_str(&format!("{:<w$}", f(i), w = w));
        }
        out.push_str("|\n");
    };
    row(&mut out, &|i| t.columns[i].name.clone());
    row(&mut out, &|_| "char".into());
    row(&mut out, &|_| String::new());
    row(&mut out, &|_| String::new());
    for r in &t.rows {
        for (v, w) in r.iter().zip(&widths) {
            out.push(' ');
            out.push_str(&format!("{:<w$}", v, w = w));
        }
        out.push('\n');
    }
    out
}

/// File name of an extension table.
pub fn ext_table_name(koaid: &str, index: usize, extname: &str) -> String {
    format!("{koaid}.ext{index}.{}.tbl", crate::paths::sanitize_name(extname))
}

/// Whether a product file belongs to a KOAID (spec §5.5/§14): the name
/// contains the KOAID literally (reference defect #29: it was a regex);
/// logs, header diffs and hidden temporaries are excluded, and a name
/// where the KOAID goes on with a sibling's suffix (NIRC2 `_unp`, SCALES
/// `_qramp`: another KOAID with the same base) belongs to that sibling
/// only (SCALES defect S3).
pub fn belongs_to(koaid: &str, path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') || name.ends_with(".log") || name.ends_with(".diff.json") || name.ends_with(".xfr.table") {
        return false;
    }
    // some occurrence of the KOAID not continued by a sibling's suffix (a
    // suffix ends where letters and digits do: `_unpacked` is not `_unp`)
    let sibling = |rest: &str| {
        crate::paths::KOAID_SUFFIXES
            .iter()
            .any(|s| rest.strip_prefix(s).is_some_and(|after| !after.starts_with(|c: char| c.is_ascii_alphanumeric())))
    };
    name.match_indices(koaid).any(|(at, _)| !sibling(&name[at + koaid.len()..]))
}

/// Files of a KOAID below `dir` (recursive, links not followed), sorted by
/// full path; an unreadable folder is an error.
pub fn product_files(dir: &Path, koaid: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e?;
        let p = e.path();
        if !e.file_type().is_dir() && belongs_to(koaid, p) && !p.to_string_lossy().ends_with(".md5sum.table") {
            out.push(e.into_path());
        }
    }
    out.sort();
    Ok(out)
}

/// Write `<dir>/<KOAID>.md5sum.table` for `files` under a temporary name,
/// fsync it and rename it into place (the commit point of a product set).
/// Returns its path and the bytes of the files and the table together.
pub fn write_md5_table(dir: &Path, koaid: &str, files: &[PathBuf], known: &BTreeMap<PathBuf, String>) -> std::io::Result<(PathBuf, u64)> {
    let name = dir.join(format!("{koaid}.md5sum.table"));
    let tmp = dir.join(format!(".{koaid}.md5sum.table.{}.tmp", std::process::id()));
    let written = md5_table_text(dir, files, known).and_then(|text| {
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &name)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let total = files.iter().chain(std::iter::once(&name)).filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    Ok((name, total))
}

/// Text of `<KOAID>.md5sum.table`: `md5  relative/path` per file. Known MD5s
/// (computed while writing) are reused instead of re-reading big files.
pub fn md5_table_text(dir: &Path, files: &[PathBuf], known: &BTreeMap<PathBuf, String>) -> std::io::Result<String> {
    let mut out = String::new();
    for f in files {
        let md5 = match known.get(f) {
            Some(m) => m.clone(),
            None => crate::fits::write::md5_file(f)?,
        };
        let rel = f.strip_prefix(dir).unwrap_or(f);
        out.push_str(&format!("{md5}  {}\n", rel.display()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_widths() {
        assert_eq!(ext_width("A20", "NAME"), 20);
        assert_eq!(ext_width("20A", "NAME"), 20);
        assert_eq!(ext_width("E", "X"), 24);
        assert_eq!(ext_width("1E", "X"), 16);
        assert_eq!(ext_width("1E", "A_VERY_LONG_COLUMN_NAME"), 23);
    }

    #[test]
    fn product_membership() {
        let k = "NR.20190615.12571.36";
        assert!(belongs_to(k, Path::new("/x/NR.20190615.12571.36.fits")));
        assert!(!belongs_to(k, Path::new("/x/NR.20190615.12571.36.log")));
        assert!(!belongs_to(k, Path::new("/x/NRX20190615.12571.36.fits")), "dots are literal");
        assert!(!belongs_to(k, Path::new("/x/NR.20190615.12571.36_unp.fits")));
        assert!(belongs_to("N2.1_unp", Path::new("/x/N2.1_unp.fits")));
        // SCALES: a raw cube and its ramp fit share the base KOAID (S3)
        let raw = "SS.20260605.62983.38";
        let qramp = "SS.20260605.62983.38_qramp";
        for ext in ["fits", "jpg", "metadata.table", "ext1.RAMP.tbl"] {
            assert!(!belongs_to(raw, Path::new(&format!("/x/{qramp}.{ext}"))), "{ext}");
            assert!(belongs_to(qramp, Path::new(&format!("/x/{qramp}.{ext}"))), "{ext}");
            assert!(belongs_to(raw, Path::new(&format!("/x/{raw}.{ext}"))), "{ext}");
            assert!(!belongs_to(qramp, Path::new(&format!("/x/{raw}.{ext}"))), "{ext}");
        }
        assert!(belongs_to(raw, Path::new(&format!("/x/{raw}_L0.jpg"))), "a preview suffix is not a sibling");
        assert!(belongs_to(raw, Path::new(&format!("/x/{raw}_unpacked.fits"))), "_unpacked is not _unp");
        assert!(belongs_to(raw, Path::new(&format!("/x/{qramp}_vs_{raw}.jpg"))), "a later plain occurrence counts");
        assert!(!belongs_to(k, Path::new("/x/.NR.20190615.12571.36.fits.tmp")));
        assert!(!belongs_to(k, Path::new("/x/NR.20190615.12571.36.diff.json")));
    }
}
