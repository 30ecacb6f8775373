//! Step `validate` (spec §5.4), first failure wins, all INVALID: no HDUs,
//! a corrupted HDU, a rejected path (checked by `screen` before any
//! component runs), no OFNAME, OFNAME not matching the file name (checked
//! after DQA, whose set_ofName step provides OFNAME). Reference defect #24 fixed: path rejects match whole path
//! components (`mira`, `idf`, … no longer match inside other names) and a
//! versioned stage copy (`_verN`) matches its original name.

use std::path::Path;

use super::{Job, Severity, StepResult};
use crate::fits::HValue;

/// Path components that mark files never to archive, and path fragments:
/// `/subtracted` as the reference has it, so any folder or file whose name
/// starts with it (`subtracted_frames/`, `subtracted_0001.fits`) is refused.
const REJECT_COMPONENTS: [&str; 3] = ["mira", "savier-protected", "idf"];
const REJECT_FRAGMENTS: [&str; 2] = ["SPEC/ORP", "/subtracted"];

/// Why a path is rejected, if it is.
pub fn path_reject(path: &str) -> Option<String> {
    if let Some(c) = path.split('/').find(|c| REJECT_COMPONENTS.contains(c)) {
        return Some(format!("path component {c:?}"));
    }
    REJECT_FRAGMENTS.iter().find(|f| path.contains(*f)).map(|f| format!("path contains {f:?}"))
}

/// The name OFNAME must equal: the basename with `.fits.gz` → `.fits` and a
/// stage-copy `_verN` suffix removed.
pub fn expected_ofname(path: &Path) -> String {
    let mut name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if let Some(stem) = name.strip_suffix(".fits.gz") {
        name = format!("{stem}.fits");
    }
    if let Some((stem, ext)) = name.rsplit_once('.') {
        if let Some(i) = stem.rfind("_ver") {
            if stem[i + 4..].parse::<u32>().is_ok() {
                name = format!("{}.{ext}", &stem[..i]);
            }
        }
    }
    name
}

impl Job<'_> {
    /// First part (spec §5.4 checks 1–3), before any component runs: a file
    /// without HDUs, with a corrupted HDU or on a rejected path is INVALID
    /// without asking components or services anything.
    pub(super) fn step_screen(&mut self) -> StepResult {
        if let Some(c) = self.file().corrupted.first().cloned() {
            return Err(self.stop(Severity::Invalid, c.code, "validate", c.message));
        }
        if self.file().hdus.is_empty() {
            return Err(self.stop(Severity::Invalid, "NO_FITS_HDUS", "validate", "the file has no HDUs"));
        }
        let path = self.input.display().to_string();
        if let Some(why) = path_reject(&path) {
            return Err(self.stop(Severity::Invalid, "FILEPATH_REJECT", "validate", format!("{path}: {why}")));
        }
        Ok(())
    }

    /// Second part (checks 4–5), after DQA has set OFNAME: OFNAME must exist
    /// and name the file.
    pub(super) fn step_validate(&mut self) -> StepResult {
        let ofname = match self.file().hdus[0].value("OFNAME") {
            Some(HValue::Text(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => return Err(self.stop(Severity::Invalid, "BAD_OFNAME", "validate", "no OFNAME could be determined")),
        };
        let expected = expected_ofname(&self.input);
        if ofname != expected {
            return Err(self.stop(Severity::Invalid, "MISMATCHED_FILENAME", "validate", format!("{ofname} != {expected}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_by_component() {
        assert!(path_reject("/s/sdata1500/nires9/mira/s1.fits").is_some());
        assert!(path_reject("/sdata/x/SPEC/ORP/a.fits").is_some());
        assert!(path_reject("/s/sdata1500/nires9/2019jun15/s190615_0020.fits").is_none());
        assert!(path_reject("/s/sdata/admiral/a.fits").is_none(), "'mira' inside a name is fine");
        assert!(path_reject("/s/sdata/kidfoo/a.fits").is_none(), "'idf' inside a name is fine");
        // the reference's `/subtracted` is a fragment: names that start with it
        for p in ["/s/sdata/x/subtracted/a.fits", "/s/sdata/x/subtracted_frames/a.fits", "/s/sdata/x/subtracted_0001.fits"] {
            assert!(path_reject(p).is_some(), "{p}");
        }
        assert!(path_reject("/s/sdata/x/bg_subtracted.fits").is_none(), "not after a /");
    }

    #[test]
    fn stage_copies_match() {
        assert_eq!(expected_ofname(Path::new("/a/s190615_0020.fits")), "s190615_0020.fits");
        assert_eq!(expected_ofname(Path::new("/a/s190615_0020.fits.gz")), "s190615_0020.fits");
        assert_eq!(expected_ofname(Path::new("/stage/s190615_0020_ver3.fits")), "s190615_0020.fits");
    }
}
