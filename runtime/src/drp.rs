//! DRP products of levels 1 and 2 (spec pipeline.md §20, instruments.md per
//! instrument): which files of a DRP output folder belong to a KOAID and
//! where they go under the level folder. Pure functions of the folder's
//! contents; the pipeline's `drp` step copies, tables and transfers them.
//!
//! Reference defects fixed here: a PypeIt file without `DET0` no longer
//! slices at −1 and a source path without `keck_<instr>` keeps its file
//! name (not only its last character); the copy skips only destinations that
//! are already up to date (the reference's test was inverted).

use std::path::{Path, PathBuf};

/// One product: its source and its path relative to the level folder.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Product {
    pub src: PathBuf,
    pub rel: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DrpError {
    /// No product of this KOAID and level (status FILE_NOT_FOUND).
    #[error("{koaid} level {level}: {why}")]
    NotFound { koaid: String, level: u8, why: String },
}

/// Settings the rules read.
#[derive(Clone, Debug, Default)]
pub struct DrpSettings {
    /// The fixed KCWI level-2 DRP configuration file (reference:
    /// `kcwi_koarti_lev2.cfg` in the DRP config folder).
    pub kcwi_lev2_config: Option<PathBuf>,
}

/// The products of `koaid` at `level` from the row's `stage_file`
/// (the DRP output folder, or for KCWI a file inside it).
pub fn products(instrument: &str, level: u8, stage_file: &str, koaid: &str, settings: &DrpSettings) -> Result<Vec<Product>, DrpError> {
    let datadir = PathBuf::from(stage_file.trim_end_matches('/'));
    let nf = |why: &str| DrpError::NotFound { koaid: koaid.to_string(), level, why: why.to_string() };
    let mut out = match instrument.to_uppercase().as_str() {
        "KCWI" => kcwi(level, &datadir, koaid, settings).ok_or_else(|| nf("no redux/<KOAID>_icubed.fits or _icubes.fits"))?,
        "KPF" => kpf(level, &datadir, koaid),
        "OSIRIS" => suffixed(
            &datadir,
            koaid,
            &["_drp.fits.gz", "_drp.jpg", ".lev1.fits.gz", ".lev1.jpg", ".lev2.fits.gz", ".lev2_median.jpg", ".lev2_sum_positive_slices.jpg"],
        ),
        "LRIS" if level == 1 => suffixed(&datadir, koaid, &["_drp.fits.gz", "_drp.jpg"]),
        "NIRC2" => suffixed(&datadir, koaid, &["_drp.fits.gz", "_drp.jpg"]),
        "DEIMOS" | "ESI" | "LRIS" | "MOSFIRE" | "NIRES" if level == 2 => pypeit(instrument, &datadir, koaid),
        "DEIMOS" | "ESI" | "LRIS" | "MOSFIRE" | "NIRES" => Vec::new(),
        _ => return Err(nf(&format!("{instrument} has no DRP products"))),
    };
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.dedup_by(|a, b| a.rel == b.rel);
    if out.is_empty() {
        return Err(nf(&format!("nothing in {}", datadir.display())));
    }
    Ok(out)
}

/// Every file below `dir` (recursive), sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// Default destination: `[plots/|redux/|logs/]<name>` (the sub-folder kept
/// when the source's parent folder is so named).
fn default_rel(src: &Path) -> PathBuf {
    let parent = src.parent().map(name).unwrap_or_default();
    match parent.as_str() {
        "plots" | "redux" | "logs" => Path::new(&parent).join(name(src)),
        _ => PathBuf::from(name(src)),
    }
}

/// `<datadir>/<KOAID><suffix>` that exist; destination: the file name.
fn suffixed(datadir: &Path, koaid: &str, suffixes: &[&str]) -> Vec<Product> {
    suffixes
        .iter()
        .map(|s| datadir.join(format!("{koaid}{s}")))
        .filter(|p| p.is_file())
        .map(|src| Product { rel: PathBuf::from(name(&src)), src })
        .collect()
}

/// KCWI (instruments.md §6): the cubes, the plots of earlier frames, and at
/// level 2 the processing table, the DRP configuration, the frame's own
/// sky/scat/std plots and the logs.
fn kcwi(level: u8, stage: &Path, koaid: &str, settings: &DrpSettings) -> Option<Vec<Product>> {
    let datadir = stage.parent()?.to_path_buf();
    let cubes: Vec<PathBuf> = ["_icubed.fits", "_icubes.fits"].iter().map(|s| datadir.join("redux").join(format!("{koaid}{s}"))).collect();
    let header = cubes.iter().find(|p| p.is_file())?;
    let frameno = crate::fits::load(header).ok().and_then(|f| {
        f.hdus.first().and_then(|h| match h.value("FRAMENO") {
            Some(crate::fits::HValue::Int(i)) => Some(*i),
            Some(crate::fits::HValue::Float(x)) => Some(*x as i64),
            Some(crate::fits::HValue::Text(t)) => t.trim().parse().ok(),
            _ => None,
        })
    })?;
    let mut out: Vec<Product> = cubes.iter().filter(|p| p.is_file()).map(|src| Product { rel: default_rel(src), src: src.clone() }).collect();
    let plot = |kinds: &[&str], keep: &dyn Fn(i64) -> bool| -> Vec<Product> {
        let Ok(rd) = std::fs::read_dir(datadir.join("plots")) else { return Vec::new() };
        let mut v: Vec<Product> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let n = name(p);
                let parts: Vec<&str> = n.split('_').collect();
                parts.len() >= 2 && kinds.contains(&parts[0]) && parts[1].parse::<i64>().is_ok_and(keep)
            })
            .map(|src| Product { rel: default_rel(&src), src })
            .collect();
        v.sort();
        v
    };
    out.extend(plot(&["arc", "bars", "bias", "ql"], &|n| n < frameno));
    if level >= 2 {
        let proc_table = datadir.join("kcwi.proc");
        if proc_table.is_file() {
            out.push(Product { rel: default_rel(&proc_table), src: proc_table });
        }
        if let Some(cfg) = settings.kcwi_lev2_config.as_ref().filter(|p| p.is_file()) {
            out.push(Product { rel: PathBuf::from(name(cfg)), src: cfg.clone() });
        }
        out.extend(plot(&["sky", "scat", "std"], &|n| n == frameno));
        if let Ok(rd) = std::fs::read_dir(datadir.join("logs")) {
            out.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).map(|src| Product { rel: default_rel(&src), src }));
        }
    }
    Some(out)
}

/// Replace the path component `from` by `to`.
fn swap_component(p: &Path, from: &str, to: &str) -> PathBuf {
    p.components()
        .map(|c| if c.as_os_str() == from { std::ffi::OsStr::new(to).to_owned() } else { c.as_os_str().to_owned() })
        .collect()
}

/// KPF (instruments.md §7): files naming the KOAID below the L1 folder (and
/// at level 2 the L2, logs and quick-look folders); destination
/// `<KOAID>/[QLP/<parent>/]<name without _zoomable>`.
fn kpf(level: u8, datadir: &Path, koaid: &str) -> Vec<Product> {
    let mut roots: Vec<(PathBuf, bool)> = vec![(datadir.to_path_buf(), false)];
    if level >= 2 {
        roots.push((swap_component(datadir, "L1", "L2"), false));
        roots.push((swap_component(datadir, "L1", "logs"), false));
        let q = swap_component(datadir, "L1", "QLP").join(koaid);
        // walking q top-down, the sub-folders of the last folder that has any
        let mut last: Vec<String> = Vec::new();
        let mut stack = vec![q.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            let mut subs: Vec<PathBuf> = rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
            subs.sort();
            if !subs.is_empty() {
                last = subs.iter().map(|s| name(s)).collect();
            }
            stack.extend(subs.into_iter().rev());
        }
        roots.extend(last.into_iter().map(|n| (q.join(n), true)));
    }
    let mut out = Vec::new();
    for (root, qlp) in roots {
        for src in walk(&root).into_iter().filter(|p| name(p).contains(koaid)) {
            let file = name(&src).replace("_zoomable", "");
            let rel = if qlp {
                let parent = src.parent().map(name).unwrap_or_default();
                Path::new(koaid).join("QLP").join(parent).join(file)
            } else {
                Path::new(koaid).join(file)
            };
            out.push(Product { src, rel });
        }
    }
    out
}

/// `DET0…` up to the next `_` (`from` characters past `DET0` at least).
fn det_part(s: &str, min_len: usize) -> Option<&str> {
    let i = s.find("DET0")?;
    let rest = &s[i..];
    let end = rest.char_indices().skip(min_len).find(|(_, c)| *c == '_').map(|(j, _)| j).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// PypeIt level 2 (instruments.md §1.1): the run's .calib/.log/.pypeit, the
/// files naming the KOAID, and the masters/calibrations and arcs of their
/// detectors; destination from `keck_<instr>` on.
fn pypeit(instrument: &str, datadir: &Path, koaid: &str) -> Vec<Product> {
    let mut selected: Vec<PathBuf> = Vec::new();
    if let (Some(parent), Some(cfg)) = (datadir.parent(), datadir.file_name()) {
        let cfg = cfg.to_string_lossy();
        for ext in ["calib", "log", "pypeit"] {
            let p = parent.join(format!("{cfg}.{ext}"));
            if p.is_file() {
                selected.push(p);
            }
        }
    }
    let all = walk(datadir);
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
            let rel = match s.find(&key) {
                Some(i) => PathBuf::from(&s[i..]),
                None => PathBuf::from(name(&src)),
            };
            Product { src, rel }
        })
        .collect()
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

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, p.display().to_string()).unwrap();
    }

    fn rels(v: &[Product]) -> Vec<String> {
        v.iter().map(|p| p.rel.display().to_string()).collect()
    }

    #[test]
    fn osiris_nirc2_lris_suffix_lists() {
        let d = tempfile::tempdir().unwrap();
        let k = "OS.20240315.12345.67";
        touch(&d.path().join(format!("{k}.lev1.fits.gz")));
        touch(&d.path().join(format!("{k}_drp.jpg")));
        touch(&d.path().join(format!("{k}.other.fits")));
        let s = d.path().display().to_string() + "/";
        let got = products("OSIRIS", 1, &s, k, &DrpSettings::default()).unwrap();
        assert_eq!(rels(&got), [format!("{k}.lev1.fits.gz"), format!("{k}_drp.jpg")]);
        let e = products("NIRC2", 1, &s, "N2.20240315.1.00", &DrpSettings::default()).unwrap_err();
        assert!(matches!(e, DrpError::NotFound { level: 1, .. }), "{e}");
        assert!(products("HIRES", 1, &s, k, &DrpSettings::default()).is_err(), "HIRES has no DRP products");
        assert!(products("NIRES", 1, &s, k, &DrpSettings::default()).is_err(), "PypeIt has no level-1 list");
    }

    #[test]
    fn kcwi_levels() {
        let d = tempfile::tempdir().unwrap();
        let k = "KB.20240315.12345.67";
        let dir = d.path().join("kcwi/2024mar15");
        // the cube with its FRAMENO
        let cube = dir.join("redux").join(format!("{k}_icubed.fits"));
        std::fs::create_dir_all(cube.parent().unwrap()).unwrap();
        let mut cards = crate::samples::image_cards(true, 16, &[]);
        cards.push(crate::samples::int("FRAMENO", 20));
        let f = crate::samples::Frame { hdus: vec![crate::samples::FrameHdu { cards, data: crate::samples::Data::None }] };
        f.write(&cube).unwrap();
        for p in ["arc_00010_x.png", "bars_00019_y.png", "ql_00020_z.png", "sky_00020_a.png", "std_00019_b.png", "bias_x_c.png", "scat_00020_d.png"] {
            touch(&dir.join("plots").join(p));
        }
        touch(&dir.join("kcwi.proc"));
        touch(&dir.join("logs/kcwi.log"));
        let cfg = d.path().join("conf/kcwi_koarti_lev2.cfg");
        touch(&cfg);
        let settings = DrpSettings { kcwi_lev2_config: Some(cfg) };
        // stage_file is a file in the datadir (its parent is the datadir)
        let stage = dir.join(format!("{k}.fits")).display().to_string();
        let l1 = products("KCWI", 1, &stage, k, &settings).unwrap();
        assert_eq!(rels(&l1), ["plots/arc_00010_x.png", "plots/bars_00019_y.png", format!("redux/{k}_icubed.fits").as_str()]);
        let l2 = products("KCWI", 2, &stage, k, &settings).unwrap();
        assert_eq!(
            rels(&l2),
            [
                "kcwi.proc",
                "kcwi_koarti_lev2.cfg",
                "logs/kcwi.log",
                "plots/arc_00010_x.png",
                "plots/bars_00019_y.png",
                "plots/scat_00020_d.png",
                "plots/sky_00020_a.png",
                format!("redux/{k}_icubed.fits").as_str(),
            ]
        );
        // no cube: FILE_NOT_FOUND
        assert!(products("KCWI", 1, &stage, "KB.20240315.99999.99", &settings).is_err());
    }

    #[test]
    fn kpf_roots_and_destinations() {
        let d = tempfile::tempdir().unwrap();
        let k = "KP.20240315.12345.67";
        let l1 = d.path().join("L1/20240315");
        touch(&l1.join(format!("{k}_L1.fits")));
        touch(&l1.join("other.fits"));
        touch(&d.path().join(format!("L2/20240315/{k}_L2.fits")));
        touch(&d.path().join(format!("logs/20240315/{k}.log.txt")));
        touch(&d.path().join(format!("QLP/20240315/{k}/a/{k}_spec_zoomable.png")));
        touch(&d.path().join(format!("QLP/20240315/{k}/b/{k}_ccd.png")));
        let s = l1.display().to_string();
        assert_eq!(rels(&products("KPF", 1, &s, k, &DrpSettings::default()).unwrap()), [format!("{k}/{k}_L1.fits")]);
        let got = rels(&products("KPF", 2, &s, k, &DrpSettings::default()).unwrap());
        assert!(got.contains(&format!("{k}/{k}_L2.fits")), "{got:?}");
        assert!(got.contains(&format!("{k}/{k}.log.txt")), "{got:?}");
        assert!(got.contains(&format!("{k}/QLP/a/{k}_spec.png")), "_zoomable removed: {got:?}");
        assert!(got.contains(&format!("{k}/QLP/b/{k}_ccd.png")), "{got:?}");
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn pypeit_association_and_destinations() {
        let d = tempfile::tempdir().unwrap();
        let k = "DE.20240315.12345.67";
        let run = d.path().join("keck_deimos_A");
        touch(&d.path().join("keck_deimos_A.pypeit"));
        touch(&d.path().join("keck_deimos_A.log"));
        touch(&run.join(format!("Science/spec1d_{k}-obj_DET03_20240315.fits")));
        touch(&run.join("Masters/MasterArc_A_1_DET03.fits"));
        touch(&run.join("Masters/MasterArc_A_1_DET07.fits"));
        touch(&run.join(format!("Science/notes_{k}.txt")));
        let got = rels(&products("DEIMOS", 2, &run.display().to_string(), k, &DrpSettings::default()).unwrap());
        assert!(got.contains(&"keck_deimos_A.pypeit".to_string()), "{got:?}");
        assert!(got.contains(&format!("keck_deimos_A/Science/spec1d_{k}-obj_DET03_20240315.fits")), "{got:?}");
        assert!(got.contains(&"keck_deimos_A/Masters/MasterArc_A_1_DET03.fits".to_string()), "{got:?}");
        assert!(!got.iter().any(|g| g.contains("DET07")), "another detector's master is not taken: {got:?}");
        assert!(got.contains(&format!("keck_deimos_A/Science/notes_{k}.txt")), "no DET0: kept, no association, no crash");
        // a path without keck_<instr> keeps its file name (reference: only its last character)
        let other = d.path().join("run2");
        touch(&other.join(format!("{k}_x.fits")));
        assert_eq!(rels(&products("DEIMOS", 2, &other.display().to_string(), k, &DrpSettings::default()).unwrap()), [format!("{k}_x.fits")]);
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
