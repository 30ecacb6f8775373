//! DRP products of levels 1 and 2 (spec pipeline.md §20): the host side of
//! the instrument components' DRP rules. A component says which folders and
//! headers it needs (`drp-scan`); [`list`] lists them — only inside the row's
//! DRP tree — and [`accept`] checks the component's choice (`drp-select`):
//! every source one of the listed files, every destination inside the level
//! folder. Then [`copy_product`] copies; the pipeline's `drp` step tables and
//! transfers.
//!
//! Reference defect fixed here: the copy skips only destinations that are
//! already up to date (the reference's test was inverted).

use std::path::{Component, Path, PathBuf};

use crate::sandbox::bindings::types::{DrpEntry, DrpListing, DrpProduct, DrpRequest};

/// One product: its source and its path relative to the level folder.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Product {
    pub src: PathBuf,
    pub rel: PathBuf,
}

/// At most this many entries are listed for one row.
pub const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DrpError {
    /// A folder or header outside the row's DRP tree, or a relative path.
    #[error("{0} is outside the DRP tree {1}")]
    Outside(String, String),
    /// More than [`MAX_ENTRIES`] entries.
    #[error("more than {MAX_ENTRIES} entries below {0}")]
    TooMany(String),
    /// A product the host did not list, or a destination outside the level folder.
    #[error("product {src} → {rel}: {why}")]
    Refused { src: String, rel: String, why: String },
}

/// The DRP tree of a row: two folders above its stage_file (KPF's L1 folder
/// has its L2/logs/QLP siblings there; PypeIt's run folder its parent) —
/// never `/` itself.
pub fn tree(stage_file: &str) -> PathBuf {
    let p = Path::new(stage_file.trim_end_matches('/'));
    let named = |a: &&Path| a.components().any(|c| matches!(c, Component::Normal(_)));
    [p.parent().and_then(Path::parent), p.parent()].into_iter().flatten().find(named).unwrap_or(p).to_path_buf()
}

/// An absolute path without `.`/`..` inside `tree`.
fn inside(p: &Path, tree: &Path) -> bool {
    p.is_absolute() && p.components().all(|c| matches!(c, Component::Normal(_) | Component::RootDir)) && p.starts_with(tree)
}

/// List what a component asked for: the folders' entries (symbolic links
/// are not followed, unreadable folders are skipped), sorted component by
/// component; the primary headers of the requested files that parse; the
/// configured configuration files that exist.
pub fn list(scan: &DrpRequest, stage_file: &str, config_files: &[PathBuf]) -> Result<DrpListing, DrpError> {
    let tree = tree(stage_file);
    let mut entries: Vec<(PathBuf, bool)> = Vec::new();
    for f in &scan.folders {
        let dir = PathBuf::from(&f.path);
        if !inside(&dir, &tree) {
            return Err(DrpError::Outside(f.path.clone(), tree.display().to_string()));
        }
        let depth = if f.recursive { usize::MAX } else { 1 };
        // unreadable folders are skipped; links are neither files nor folders here
        for e in walkdir::WalkDir::new(&dir).min_depth(1).max_depth(depth).follow_links(false).into_iter().flatten() {
            let t = e.file_type();
            if t.is_dir() || t.is_file() {
                entries.push((e.into_path(), t.is_dir()));
            }
            if entries.len() > MAX_ENTRIES {
                return Err(DrpError::TooMany(f.path.clone()));
            }
        }
    }
    entries.sort();
    entries.dedup();
    let mut headers = Vec::new();
    for h in &scan.headers {
        let p = PathBuf::from(h);
        if !inside(&p, &tree) {
            return Err(DrpError::Outside(h.clone(), tree.display().to_string()));
        }
        if let Ok(f) = crate::fits::load(&p) {
            if let Some(hdu) = f.hdus.first() {
                headers.push((h.clone(), crate::pipeline::identify::wit_cards(&hdu.cards)));
            }
        }
    }
    Ok(DrpListing {
        entries: entries.into_iter().map(|(p, d)| DrpEntry { path: p.display().to_string(), is_dir: d }).collect(),
        headers,
        config_files: config_files.iter().filter(|p| p.is_file()).map(|p| p.display().to_string()).collect(),
    })
}

/// Check a component's products against the listing: each source a listed
/// file or configuration file, each destination relative and without `..`;
/// sorted by destination, one product per destination.
pub fn accept(listing: &DrpListing, products: Vec<DrpProduct>) -> Result<Vec<Product>, DrpError> {
    let listed: std::collections::HashSet<&str> =
        listing.entries.iter().filter(|e| !e.is_dir).map(|e| e.path.as_str()).chain(listing.config_files.iter().map(String::as_str)).collect();
    let mut out = Vec::with_capacity(products.len());
    for p in products {
        let refuse = |why: &str| DrpError::Refused { src: p.src.clone(), rel: p.rel.clone(), why: why.into() };
        if !listed.contains(p.src.as_str()) {
            return Err(refuse("not a listed file"));
        }
        let rel = Path::new(&p.rel);
        if p.rel.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(refuse("destination outside the level folder"));
        }
        out.push(Product { src: PathBuf::from(&p.src), rel: rel.to_path_buf() });
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.dedup_by(|a, b| a.rel == b.rel);
    Ok(out)
}

/// The configured DRP configuration files of an instrument (KCWI level 2:
/// `archive.kcwi_lev2_config`).
pub fn config_files(cfg: &crate::config::Config, instrument: &str) -> Vec<PathBuf> {
    match (instrument.to_uppercase().as_str(), &cfg.archive.kcwi_lev2_config) {
        ("KCWI", Some(c)) => vec![c.clone()],
        _ => Vec::new(),
    }
}

/// Why a row's products could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// The component failed, or broke its contract (a folder outside the
    /// tree, a product it was not shown, a destination outside the level folder).
    #[error(transparent)]
    Component(#[from] crate::sandbox::ComponentFailure),
    /// The folders hold more than [`MAX_ENTRIES`] entries.
    #[error(transparent)]
    TooMany(DrpError),
    /// The component found none (its reason), or chose none.
    #[error("{0}")]
    NotFound(String),
}

impl SelectError {
    /// The status code of the row.
    pub fn code(&self) -> &'static str {
        match self {
            SelectError::Component(f) => f.code(),
            SelectError::TooMany(_) => "DRP_LIST_ERROR",
            SelectError::NotFound(_) => "FILE_NOT_FOUND",
        }
    }
}

/// A row's products, the whole exchange: the component's `drp-scan`, the
/// listing, its `drp-select`, the checks. Also returns what was asked for
/// (the component runner prints it).
pub fn select(
    sb: &crate::sandbox::Sandbox,
    component: &str,
    ctx: &crate::sandbox::bindings::types::Context,
    stage_file: &str,
    koaid: &str,
    config_files: &[PathBuf],
) -> Result<(DrpRequest, Vec<Product>), SelectError> {
    let refused = |e: DrpError| match e {
        DrpError::TooMany(_) => SelectError::TooMany(e),
        other => crate::sandbox::ComponentFailure::Contract { component: component.into(), message: other.to_string() }.into(),
    };
    // a relative stage_file would resolve against the daemon's folder (and
    // every folder derived from it would look outside the tree)
    if !Path::new(stage_file).is_absolute() {
        return Err(SelectError::NotFound(format!("stage_file {stage_file:?} is not an absolute path")));
    }
    let request = sb.drp_scan(component, ctx, stage_file, koaid)?;
    let listing = list(&request, stage_file, config_files).map_err(refused)?;
    let chosen = sb.drp_select(component, ctx, stage_file, koaid, &listing)?.map_err(SelectError::NotFound)?;
    let products = accept(&listing, chosen).map_err(refused)?;
    if products.is_empty() {
        return Err(SelectError::NotFound(format!("nothing in {stage_file}")));
    }
    Ok((request, products))
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// Whether a copy of `src` at `dest` is needed: missing, different size, or
/// older than the source.
pub fn needs_copy(src: &Path, dest: &Path) -> bool {
    let (Ok(s), Ok(d)) = (std::fs::metadata(src), std::fs::metadata(dest)) else { return true };
    if s.len() != d.len() {
        return true;
    }
    match (s.modified(), d.modified()) {
        (Ok(ts), Ok(td)) => ts > td,
        _ => true,
    }
}

/// Copy a product into the level folder (atomically, keeping the source's
/// modification time); nothing when the destination is up to date.
pub fn copy_product(src: &Path, dest: &Path) -> std::io::Result<bool> {
    if src == dest || !needs_copy(src, dest) {
        return Ok(false);
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = dest.with_file_name(format!(".{}.{}.tmp", name(dest), std::process::id()));
    let copied = std::fs::copy(src, &tmp).and_then(|_| {
        let mtime = std::fs::metadata(src)?.modified()?;
        std::fs::File::options().write(true).open(&tmp)?.set_modified(mtime)?;
        std::fs::rename(&tmp, dest)
    });
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    copied.map(|_| true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::bindings::types::DrpFolder;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, p.display().to_string()).unwrap();
    }

    fn scan(folders: &[(&Path, bool)], headers: &[&Path]) -> DrpRequest {
        DrpRequest {
            folders: folders.iter().map(|(p, r)| DrpFolder { path: p.display().to_string(), recursive: *r }).collect(),
            headers: headers.iter().map(|p| p.display().to_string()).collect(),
        }
    }

    #[test]
    fn listing_is_sorted_bounded_and_inside_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let l1 = d.path().join("kpf/L1/20240315");
        touch(&l1.join("b.fits"));
        touch(&l1.join("a-x/deep.fits"));
        touch(&l1.join("a/one.fits"));
        touch(&d.path().join("kpf/L2/20240315/c.fits"));
        std::os::unix::fs::symlink(d.path(), l1.join("loop")).unwrap();
        let stage = l1.display().to_string() + "/";
        assert_eq!(tree(&stage), d.path().join("kpf"));
        assert_eq!(tree("/a/b"), PathBuf::from("/a"), "never the root folder");
        assert_eq!(tree("/a"), PathBuf::from("/a"));
        let got = list(&scan(&[(&l1, true), (&d.path().join("kpf/L2/20240315"), false)], &[]), &stage, &[]).unwrap();
        let rel: Vec<String> =
            got.entries.iter().map(|e| format!("{}{}", e.path.strip_prefix(&d.path().display().to_string()).unwrap(), if e.is_dir { "/" } else { "" })).collect();
        // component by component: a/ and its contents before a-x/; the symbolic link is not followed
        assert_eq!(rel, ["/kpf/L1/20240315/a/", "/kpf/L1/20240315/a/one.fits", "/kpf/L1/20240315/a-x/", "/kpf/L1/20240315/a-x/deep.fits", "/kpf/L1/20240315/b.fits", "/kpf/L2/20240315/c.fits"]);
        // non-recursive: the folder's own entries only
        let flat = list(&scan(&[(&l1, false)], &[]), &stage, &[]).unwrap();
        assert_eq!(flat.entries.len(), 3);
        // outside the DRP tree (two folders above the stage file), or not absolute
        for bad in [Path::new("/etc"), &d.path().join("kpf/../other"), Path::new("relative/dir")] {
            let e = list(&scan(&[(bad, true)], &[]), &stage, &[]).unwrap_err();
            assert!(matches!(e, DrpError::Outside(..)), "{bad:?}: {e}");
        }
        assert!(matches!(list(&scan(&[], &[Path::new("/etc/hostname")]), &stage, &[]), Err(DrpError::Outside(..))));
    }

    #[test]
    fn listing_reads_requested_headers_and_existing_config_files() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("kcwi/2024mar15");
        let cube = dir.join("redux/KB.20240315.12345.67_icubed.fits");
        std::fs::create_dir_all(cube.parent().unwrap()).unwrap();
        let mut cards = crate::samples::image_cards(true, 16, &[]);
        cards.push(crate::samples::int("FRAMENO", 20));
        crate::samples::Frame { hdus: vec![crate::samples::FrameHdu { cards, data: crate::samples::Data::None }] }.write(&cube).unwrap();
        let cfg = d.path().join("kcwi_koarti_lev2.cfg");
        touch(&cfg);
        let stage = dir.join("KB.20240315.12345.67.fits").display().to_string();
        let missing = dir.join("redux/none.fits");
        let got = list(&scan(&[(&dir.join("redux"), false)], &[&cube, &missing]), &stage, &[cfg.clone(), d.path().join("absent.cfg")]).unwrap();
        assert_eq!(got.headers.len(), 1, "only the header that exists");
        assert!(got.headers[0].1.iter().any(|c| c.key == "FRAMENO" && matches!(c.value, crate::sandbox::bindings::types::Value::Int(20))));
        assert_eq!(got.config_files, [cfg.display().to_string()]);
    }

    #[test]
    fn products_must_be_listed_and_stay_in_the_level_folder() {
        let listing = DrpListing {
            entries: vec![
                DrpEntry { path: "/t/d".into(), is_dir: true },
                DrpEntry { path: "/t/d/a.fits".into(), is_dir: false },
                DrpEntry { path: "/t/d/b.fits".into(), is_dir: false },
            ],
            headers: vec![],
            config_files: vec!["/conf/x.cfg".into()],
        };
        let p = |src: &str, rel: &str| DrpProduct { src: src.into(), rel: rel.into() };
        let ok = accept(&listing, vec![p("/t/d/b.fits", "b.fits"), p("/conf/x.cfg", "x.cfg"), p("/t/d/a.fits", "sub/a.fits"), p("/t/d/b.fits", "b.fits")]).unwrap();
        let rels: Vec<_> = ok.iter().map(|p| p.rel.display().to_string()).collect();
        assert_eq!(rels, ["b.fits", "sub/a.fits", "x.cfg"], "sorted, one per destination");
        for (src, rel) in [("/etc/hostname", "h"), ("/t/d", "d"), ("/t/d/a.fits", "../a.fits"), ("/t/d/a.fits", "a/../../x"), ("/t/d/a.fits", "./x"), ("/t/d/a.fits", "/tmp/a"), ("/t/d/a.fits", "")] {
            assert!(matches!(accept(&listing, vec![p(src, rel)]), Err(DrpError::Refused { .. })), "{src} → {rel}");
        }
    }

    #[test]
    fn copies_skip_only_up_to_date_destinations() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a.fits");
        let dest = d.path().join("lev1/plots/a.fits");
        std::fs::write(&src, b"one").unwrap();
        assert!(copy_product(&src, &dest).unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"one");
        assert!(!copy_product(&src, &dest).unwrap(), "up to date: skipped");
        // a newer source is copied again (the reference skipped exactly this case)
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&src, b"two").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&src).unwrap().set_modified(later).unwrap();
        assert!(copy_product(&src, &dest).unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        assert!(!copy_product(&dest, &dest).unwrap(), "a product already in place");
    }
}
