//! The host's paths: names it builds from data it does not control
//! (components' KOAIDs, UT dates and preview suffixes, headers' EXTNAMEs,
//! operators' and keyword sources' input paths) are checked against strict
//! grammars, and every path the host writes or serves is checked to lie
//! under its root after resolution. A violation is an error value with a
//! status code, never a file outside the roots.

use std::path::{Component, Path, PathBuf};

use regex::Regex;

/// A name or path the host refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct PathError {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: String) -> PathError {
    PathError { code, message }
}

fn matches(re: &str, s: &str) -> bool {
    Regex::new(re).expect("regex").is_match(s)
}

/// KOAID suffixes that name a sibling of the plain KOAID (same base, other
/// file): NIRC2's unprocessed `_unp`, SCALES's ramp-fit `_qramp`. A product
/// name where a KOAID goes on with one of these belongs to the sibling.
pub const KOAID_SUFFIXES: &[&str] = &["_unp", "_qramp"];

/// A KOAID: `<PREFIX>.<YYYYMMDD>.<SSSSS>.<HH>` with an optional `_suffix`
/// of letters and digits (NIRC2 `_unp`, SCALES `_qramp`).
pub fn check_koaid(koaid: &str) -> Result<(), PathError> {
    if matches(r"^[A-Z0-9]{2}\.[0-9]{8}\.[0-9]{5}\.[0-9]{2}(_[A-Za-z0-9]{1,32})?$", koaid) {
        Ok(())
    } else {
        Err(refuse("BAD_KOAID", format!("{koaid:?} is not a KOAID (XX.YYYYMMDD.SSSSS.HH[_suffix])")))
    }
}

/// A UT date (`YYYY-MM-DD` or `YYYY/MM/DD`, a real calendar date) as the
/// archive's folder name `YYYYMMDD`.
pub fn utdate_dir(utdate: &str) -> Result<String, PathError> {
    let bad = || refuse("BAD_UTDATE", format!("{utdate:?} is not a UT date (YYYY-MM-DD)"));
    if !matches(r"^[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}$", utdate) {
        return Err(bad());
    }
    let d = utdate.replace('/', "-");
    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| bad())?;
    Ok(d.replace('-', ""))
}

/// A piece of a file name (a preview suffix, a product name): letters,
/// digits, `_`, `-`, `+`, `.`, no `..`, at most 128 characters.
pub fn check_name_part(part: &str) -> Result<(), PathError> {
    if part.len() <= 128 && matches(r"^[A-Za-z0-9_+.-]*$", part) && !part.contains("..") {
        Ok(())
    } else {
        Err(refuse("BAD_PRODUCT_NAME", format!("{part:?} cannot be part of a file name")))
    }
}

/// A header value made safe for a file name (EXTNAME in extension table
/// names): blanks become `_` (as the reference writes them), every other
/// character outside the name grammar becomes `_`, `..` cannot appear.
pub fn sanitize_name(value: &str) -> String {
    let s: String = value
        .trim()
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+') { c } else if c == '.' { '.' } else { '_' })
        .collect();
    let mut s = s.replace("..", "__");
    if s.starts_with('.') {
        s.replace_range(..1, "_");
    }
    s
}

/// The components of a path below some root, refusing `..`: the relative
/// part the host may join under one of its roots (the stage copy's
/// `<ofname>` without its leading `/`).
pub fn relative_part(path: &str) -> Result<PathBuf, PathError> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(refuse("PATH_OUTSIDE_ROOT", format!("{path}: '..' in a path the host joins under its root"))),
        }
    }
    Ok(out)
}

/// The deepest existing ancestor of `path`, resolved, with the rest
/// (which must hold no `..`) appended.
fn resolve(path: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(c) = cur.canonicalize() {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return Some(out);
        }
        let name = cur.file_name()?.to_os_string();
        if name == ".." {
            return None;
        }
        rest.push(name);
        if !cur.pop() {
            return None;
        }
    }
}

/// Check that `path` lies under `root` once both are resolved (symbolic
/// links followed, `..` refused): the check before every write and every
/// file served.
pub fn check_within(root: &Path, path: &Path) -> Result<(), PathError> {
    let outside = || refuse("PATH_OUTSIDE_ROOT", format!("{} is not under {}", path.display(), root.display()));
    if path.components().any(|c| c == Component::ParentDir) || !path.is_absolute() && !root.is_relative() {
        return Err(outside());
    }
    let (Some(r), Some(p)) = (resolve(root), resolve(path)) else { return Err(outside()) };
    if p.starts_with(&r) { Ok(()) } else { Err(outside()) }
}

/// What an input path names, when it is not a regular file.
pub fn file_type_code(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("INPUT_IS_DIRECTORY")
    } else if t.is_fifo() {
        Some("INPUT_IS_FIFO")
    } else if t.is_block_device() || t.is_char_device() {
        Some("INPUT_IS_DEVICE")
    } else {
        Some("INPUT_NOT_REGULAR_FILE")
    }
}

/// An input path resolved before any rule: absolute (relative to the
/// current folder), `..` and symbolic links resolved. Missing files are
/// `FITS_NOT_FOUND`.
pub fn resolve_input(path: &Path) -> Result<PathBuf, PathError> {
    path.canonicalize().map_err(|e| refuse("FITS_NOT_FOUND", format!("{}: {e}", path.display())))
}

/// Whether a resolved input path lies under one of the accepted roots.
/// Roots are path patterns compared component by component (`/s/sdata*`
/// matches `/s/sdata1500/...`, never `/s/sdata1500x` for a root
/// `/s/sdata1500`). `given` is the path as named (before links were
/// resolved): a root reached through a link (an automounted `/s/sdata1500`)
/// accepts the paths under the link's target.
pub fn under_roots(resolved: &Path, given: &Path, roots: &[String]) -> bool {
    let patterns: Vec<glob::Pattern> = roots.iter().filter_map(|r| glob::Pattern::new(r.trim_end_matches('/')).ok()).collect();
    // `*` never crosses a `/`: a pattern names one folder, not a subtree
    let opts = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
    let hit = |a: &Path| patterns.iter().any(|p| p.matches_path_with(a, opts));
    if resolved.ancestors().any(hit) {
        return true;
    }
    let Ok(lexical) = relative_part(&given.display().to_string()) else { return false };
    let lexical = Path::new("/").join(lexical);
    lexical.ancestors().filter(|a| hit(a)).any(|a| a.canonicalize().is_ok_and(|c| resolved.starts_with(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn koaids_follow_the_grammar() {
        for ok in ["NR.20190615.12571.36", "N2.20220409.01234.00_unp", "SS.20250101.00001.99_qramp"] {
            assert!(check_koaid(ok).is_ok(), "{ok}");
        }
        for bad in ["/./NR.20190615.12571.36", "../../x", "NR.20190615.12571.36/..", "NR.2019061.12571.36", "nr.20190615.12571.36", "", "NR.20190615.12571.36_a/b"] {
            assert_eq!(check_koaid(bad).unwrap_err().code, "BAD_KOAID", "{bad}");
        }
    }

    #[test]
    fn ut_dates_are_calendar_dates() {
        assert_eq!(utdate_dir("2019-06-15").unwrap(), "20190615");
        assert_eq!(utdate_dir("2019/06/15").unwrap(), "20190615");
        for bad in ["../../etc", "9999-99-99", "2019-02-30", "2019-06-15/..", "20190615", ""] {
            assert_eq!(utdate_dir(bad).unwrap_err().code, "BAD_UTDATE", "{bad}");
        }
    }

    #[test]
    fn names_and_extnames() {
        assert!(check_name_part("_RTI").is_ok() && check_name_part("").is_ok() && check_name_part("_1").is_ok());
        for bad in ["/../x", "..", "a/b", "a\0b", "x y"] {
            assert!(check_name_part(bad).is_err(), "{bad}");
        }
        assert_eq!(sanitize_name("SCI DATA"), "SCI_DATA");
        assert_eq!(sanitize_name("../../etc/passwd"), "______etc_passwd");
        assert_eq!(sanitize_name(".hidden"), "_hidden");
        for s in ["../x", "a/../../b", "..", "....//"] {
            let n = sanitize_name(s);
            assert!(!n.contains('/') && !n.contains("..") && !n.starts_with('.'), "{s} -> {n}");
        }
    }

    #[test]
    fn relative_parts_refuse_parent_components() {
        assert_eq!(relative_part("/s/sdata1500/a.fits").unwrap(), PathBuf::from("s/sdata1500/a.fits"));
        assert_eq!(relative_part("/s/sdata/../../../etc/passwd").unwrap_err().code, "PATH_OUTSIDE_ROOT");
    }

    #[test]
    fn within_resolves_links_and_refuses_parents() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        assert!(check_within(&root, &root.join("a/new/file.fits")).is_ok());
        assert!(check_within(&root, &root.join("a/../../x")).is_err());
        assert!(check_within(&root, Path::new("/etc/passwd")).is_err());
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        assert!(check_within(&root, &root.join("out/passwd")).is_err(), "a link out of the root");
    }

    #[test]
    fn roots_are_path_prefixes() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().canonicalize().unwrap();
        let real = base.join("sdata1500/nires9");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(base.join("elsewhere")).unwrap();
        let f = real.join("s1.fits");
        std::fs::write(&f, b"x").unwrap();
        let root = format!("{}/sdata*", base.display());
        assert!(under_roots(&f, &f, std::slice::from_ref(&root)));
        let other = base.join("elsewhere/x.fits");
        std::fs::write(&other, b"x").unwrap();
        // a substring test would take this one: "/sdata" inside the path
        let tricky = base.join("elsewhere/sdata1500.fits");
        std::fs::write(&tricky, b"x").unwrap();
        let literal = format!("{}/sdata1500", base.display());
        assert!(!under_roots(&tricky, &tricky, std::slice::from_ref(&literal)));
        assert!(!under_roots(&other, &other, std::slice::from_ref(&root)));
        // a root reached through a link accepts what lies under the link's target
        std::os::unix::fs::symlink(&real, base.join("sdata9")).unwrap();
        let via = base.join("sdata9/s1.fits");
        assert!(under_roots(&f, &via, std::slice::from_ref(&format!("{}/sdata9", base.display()))));
        // but a link inside a root pointing out of it does not
        std::os::unix::fs::symlink(&other, real.join("link.fits")).unwrap();
        let link = real.join("link.fits");
        assert!(!under_roots(&resolve_input(&link).unwrap(), &link, std::slice::from_ref(&root)));
    }
}
