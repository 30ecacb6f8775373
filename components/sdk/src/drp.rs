//! DRP products of levels 1 and 2 as data (spec pipeline.md §20,
//! instruments.md per instrument): an instrument says which folders and
//! headers its rules need ([`DrpRequest`]); the runtime lists them and the
//! instrument picks the products of a KOAID from that listing and says where
//! each goes under the level folder. No filesystem access here: paths are
//! strings, the listing is the only view of the disk.
//!
//! Shared rules: files named `<KOAID><suffix>` in the DRP folder (NIRC2 and
//! OSIRIS, levels 1 and 2) and PypeIt level 2 (DEIMOS, ESI, LRIS, MOSFIRE,
//! NIRES; instruments.md §1.1). Reference defects fixed: a PypeIt file
//! without `DET0` no longer slices at −1, and a source without
//! `keck_<instr>` keeps its file name (not only its last character).

use std::path::{Path, PathBuf};

use crate::types::{Card, Context, DrpEntry, DrpFolder, DrpListing, DrpProduct, DrpRequest};

/// A folder to list.
pub fn folder(path: impl AsRef<Path>, recursive: bool) -> DrpFolder {
    DrpFolder { path: path.as_ref().display().to_string(), recursive }
}

/// The DRP output folder named by a row's stage_file (no trailing `/`).
pub fn datadir(stage_file: &str) -> PathBuf {
    PathBuf::from(stage_file.trim_end_matches('/'))
}

/// File name of a path.
pub fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// A product.
pub fn product(src: &Path, rel: impl AsRef<Path>) -> DrpProduct {
    DrpProduct { src: src.display().to_string(), rel: rel.as_ref().display().to_string() }
}

/// Default destination: `[plots/|redux/|logs/]<name>` (the sub-folder kept
/// when the source's parent folder is so named).
pub fn default_rel(src: &Path) -> PathBuf {
    let parent = src.parent().map(name).unwrap_or_default();
    match parent.as_str() {
        "plots" | "redux" | "logs" => Path::new(&parent).join(name(src)),
        _ => PathBuf::from(name(src)),
    }
}

/// Replace the path component `from` by `to`.
pub fn swap_component(p: &Path, from: &str, to: &str) -> PathBuf {
    p.components()
        .map(|c| if c.as_os_str() == from { std::ffi::OsStr::new(to).to_owned() } else { c.as_os_str().to_owned() })
        .collect()
}

/// The runtime's listing, with the lookups the rules make.
pub struct Listing<'a>(pub &'a DrpListing);

impl Listing<'_> {
    fn entries(&self) -> impl Iterator<Item = (&Path, bool)> {
        self.0.entries.iter().map(|e: &DrpEntry| (Path::new(&e.path), e.is_dir))
    }

    /// Whether `p` was listed as a file.
    pub fn is_file(&self, p: &Path) -> bool {
        self.entries().any(|(q, d)| !d && q == p)
    }

    /// Files directly in `dir`, in listing order.
    pub fn files_in(&self, dir: &Path) -> Vec<PathBuf> {
        self.entries().filter(|(q, d)| !d && q.parent() == Some(dir)).map(|(q, _)| q.to_path_buf()).collect()
    }

    /// Files anywhere below `dir`, in listing order.
    pub fn files_below(&self, dir: &Path) -> Vec<PathBuf> {
        self.entries().filter(|(q, d)| !d && q.starts_with(dir) && *q != dir).map(|(q, _)| q.to_path_buf()).collect()
    }

    /// Folders anywhere below `dir`, in listing order (a folder before its
    /// contents, siblings by name).
    pub fn dirs_below(&self, dir: &Path) -> Vec<PathBuf> {
        self.entries().filter(|(q, d)| *d && q.starts_with(dir) && *q != dir).map(|(q, _)| q.to_path_buf()).collect()
    }

    /// The primary header of `p`, when it was read.
    pub fn header(&self, p: &Path) -> Option<&[Card]> {
        self.0.headers.iter().find(|(q, _)| Path::new(q) == p).map(|(_, c)| c.as_slice())
    }

    /// The configured DRP configuration files that exist.
    pub fn config_files(&self) -> Vec<PathBuf> {
        self.0.config_files.iter().map(PathBuf::from).collect()
    }
}

/// The folder of `<KOAID><suffix>` products.
pub fn suffixed_scan(stage_file: &str) -> DrpRequest {
    DrpRequest { folders: vec![folder(datadir(stage_file), false)], headers: vec![] }
}

/// `<datadir>/<KOAID><suffix>` that exist; destination: the file name.
pub fn suffixed(stage_file: &str, koaid: &str, suffixes: &[&str], listing: &Listing) -> Vec<DrpProduct> {
    let dir = datadir(stage_file);
    suffixes
        .iter()
        .map(|s| dir.join(format!("{koaid}{s}")))
        .filter(|p| listing.is_file(p))
        .map(|src| product(&src, name(&src)))
        .collect()
}

/// PypeIt level 2: the run folder (recursive) and its parent (for the
/// run's `.calib`, `.log` and `.pypeit` files).
pub fn pypeit_scan(stage_file: &str) -> DrpRequest {
    let dir = datadir(stage_file);
    let mut folders = vec![folder(&dir, true)];
    if let Some(parent) = dir.parent() {
        folders.push(folder(parent, false));
    }
    DrpRequest { folders, headers: vec![] }
}

/// `DET0…` up to the next `_` (`min_len` characters past `DET0`'s start at least).
fn det_part(s: &str, min_len: usize) -> Option<&str> {
    let i = s.find("DET0")?;
    let rest = &s[i..];
    let end = rest.char_indices().skip(min_len).find(|(_, c)| *c == '_').map(|(j, _)| j).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// PypeIt level 2 (instruments.md §1.1): the run's .calib/.log/.pypeit, the
/// files naming the KOAID, and the masters/calibrations and arcs of their
/// detectors; destination from `keck_<instr>` on.
pub fn pypeit(instrument: &str, stage_file: &str, koaid: &str, listing: &Listing) -> Vec<DrpProduct> {
    let dir = datadir(stage_file);
    let mut selected: Vec<PathBuf> = Vec::new();
    if let (Some(parent), Some(cfg)) = (dir.parent(), dir.file_name()) {
        let cfg = cfg.to_string_lossy();
        for ext in ["calib", "log", "pypeit"] {
            let p = parent.join(format!("{cfg}.{ext}"));
            if listing.is_file(&p) {
                selected.push(p);
            }
        }
    }
    let all = listing.files_below(&dir);
    let text = |p: &Path| p.display().to_string();
    let in_masters = |p: &Path| text(p).contains("/Masters") || text(p).contains("/Calibrations");
    let associated: Vec<PathBuf> = all.iter().filter(|p| in_masters(p) || name(p).starts_with("Arc")).cloned().collect();
    selected.extend(all.iter().filter(|p| name(p).contains(koaid)).cloned());
    let mut i = 0;
    while i < selected.len() {
        let s = text(&selected[i]);
        // a file without DET0 has no detector to associate (reference: index −1)
        if let (Some(m), Some(a)) = (det_part(&s, 1).map(str::to_string), det_part(&s, 6).map(str::to_string)) {
            for f in &associated {
                let t = text(f);
                let hit = (in_masters(f) && t.contains(&m)) || (t.contains("/Arc") && t.contains(&a));
                if hit && !selected.contains(f) {
                    selected.push(f.clone());
                }
            }
        }
        i += 1;
    }
    let key = format!("keck_{}", instrument.to_lowercase());
    selected
        .into_iter()
        .map(|src| {
            let s = text(&src);
            match s.find(&key) {
                Some(i) => product(&src, &s[i..]),
                None => product(&src, name(&src)),
            }
        })
        .collect()
}

/// The rule of one level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// No DRP products at this level.
    None,
    /// `<KOAID><suffix>` files in the DRP folder.
    Suffixes(&'static [&'static str]),
    /// PypeIt level 2.
    PypeIt,
}

/// An instrument's DRP rules for levels 1 and 2, as data
/// ([`crate::Instrument::DRP`]); instruments with their own rules (KCWI,
/// KPF) override `drp_scan`/`drp_select` instead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rules {
    pub level1: Rule,
    pub level2: Rule,
}

impl Rules {
    pub const NONE: Rules = Rules { level1: Rule::None, level2: Rule::None };

    fn rule(&self, level: u8) -> Rule {
        match level {
            1 => self.level1,
            2 => self.level2,
            _ => Rule::None,
        }
    }

    pub fn scan(&self, ctx: &Context, stage_file: &str) -> DrpRequest {
        match self.rule(ctx.level) {
            Rule::None => DrpRequest { folders: vec![], headers: vec![] },
            Rule::Suffixes(_) => suffixed_scan(stage_file),
            Rule::PypeIt => pypeit_scan(stage_file),
        }
    }

    pub fn select(&self, ctx: &Context, stage_file: &str, koaid: &str, listing: &Listing) -> Result<Vec<DrpProduct>, String> {
        match self.rule(ctx.level) {
            Rule::None => Err(format!("{} has no level-{} DRP products", ctx.instrument, ctx.level)),
            Rule::Suffixes(s) => Ok(suffixed(stage_file, koaid, s, listing)),
            Rule::PypeIt => Ok(pypeit(&ctx.instrument, stage_file, koaid, listing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::drp_listing as listing;

    fn rels(v: &[DrpProduct]) -> Vec<String> {
        let mut r: Vec<String> = v.iter().map(|p| p.rel.clone()).collect();
        r.sort();
        r
    }

    #[test]
    fn suffix_lists() {
        let k = "OS.20240315.12345.67";
        let l = listing(&[&format!("/d/{k}.lev1.fits.gz"), &format!("/d/{k}_drp.jpg"), &format!("/d/{k}.other.fits"), &format!("/d/sub/{k}_drp.fits.gz")]);
        let got = suffixed("/d/", k, &["_drp.fits.gz", "_drp.jpg", ".lev1.fits.gz"], &Listing(&l));
        assert_eq!(rels(&got), [format!("{k}.lev1.fits.gz"), format!("{k}_drp.jpg")], "only the folder itself, only the suffixes");
        assert_eq!(suffixed_scan("/d/").folders, [folder("/d", false)]);
    }

    #[test]
    fn pypeit_association_and_destinations() {
        let k = "DE.20240315.12345.67";
        let l = listing(&[
            "/r/keck_deimos_A.pypeit",
            "/r/keck_deimos_A.log",
            &format!("/r/keck_deimos_A/Science/spec1d_{k}-obj_DET03_20240315.fits"),
            "/r/keck_deimos_A/Masters/MasterArc_A_1_DET03.fits",
            "/r/keck_deimos_A/Masters/MasterArc_A_1_DET07.fits",
            &format!("/r/keck_deimos_A/Science/notes_{k}.txt"),
        ]);
        let got = rels(&pypeit("DEIMOS", "/r/keck_deimos_A", k, &Listing(&l)));
        assert!(got.contains(&"keck_deimos_A.pypeit".to_string()), "{got:?}");
        assert!(got.contains(&"keck_deimos_A.log".to_string()), "{got:?}");
        assert!(got.contains(&format!("keck_deimos_A/Science/spec1d_{k}-obj_DET03_20240315.fits")), "{got:?}");
        assert!(got.contains(&"keck_deimos_A/Masters/MasterArc_A_1_DET03.fits".to_string()), "{got:?}");
        assert!(!got.iter().any(|g| g.contains("DET07")), "another detector's master is not taken: {got:?}");
        assert!(got.contains(&format!("keck_deimos_A/Science/notes_{k}.txt")), "no DET0: kept, no association, no crash");
        assert_eq!(got.len(), 5);
        // a path without keck_<instr> keeps its file name (reference: only its last character)
        let l = listing(&[&format!("/r/run2/{k}_x.fits")]);
        assert_eq!(rels(&pypeit("DEIMOS", "/r/run2", k, &Listing(&l))), [format!("{k}_x.fits")]);
        assert_eq!(pypeit_scan("/r/run2/").folders, [folder("/r/run2", true), folder("/r", false)]);
    }

    #[test]
    fn rules_by_level() {
        let rules = Rules { level1: Rule::Suffixes(&["_drp.jpg"]), level2: Rule::PypeIt };
        let mut ctx = crate::testing::context("LRIS");
        let k = "LR.20240315.1.00";
        let l = listing(&[&format!("/r/keck_lris_A/{k}_drp.jpg"), &format!("/r/keck_lris_A/Science/spec1d_{k}.fits")]);
        ctx.level = 1;
        assert_eq!(rules.scan(&ctx, "/r/keck_lris_A").folders, [folder("/r/keck_lris_A", false)]);
        assert_eq!(rels(&rules.select(&ctx, "/r/keck_lris_A", k, &Listing(&l)).unwrap()), [format!("{k}_drp.jpg")]);
        ctx.level = 2;
        assert_eq!(rules.scan(&ctx, "/r/keck_lris_A").folders.len(), 2);
        assert_eq!(rels(&rules.select(&ctx, "/r/keck_lris_A", k, &Listing(&l)).unwrap()).len(), 2, "PypeIt: every file naming the KOAID");
        ctx.level = 3;
        assert!(rules.scan(&ctx, "/r").folders.is_empty());
        assert!(Rules::NONE.select(&ctx, "/r", k, &Listing(&l)).is_err(), "no rule: an error (FILE_NOT_FOUND)");
    }

    #[test]
    fn destinations_and_swapped_folders() {
        assert_eq!(default_rel(Path::new("/d/plots/a.png")), PathBuf::from("plots/a.png"));
        assert_eq!(default_rel(Path::new("/d/other/a.png")), PathBuf::from("a.png"));
        assert_eq!(swap_component(Path::new("/k/L1/20240315"), "L1", "L2"), PathBuf::from("/k/L2/20240315"));
    }
}
