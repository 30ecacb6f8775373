//! Trigger rules (spec pipeline.md §22.2): from a broadcast to a file path,
//! or the reason it is ignored. The first broadcast after a restart is not
//! skipped (the reference assumed it stale); the database decides instead.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

use crate::config::Service;

/// Why a broadcast does not queue a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Ignored {
    /// Not the trigger keyword (e.g. a heartbeat).
    OtherKeyword,
    /// The keyword has no value (KEYWORD_UNPOPULATED).
    Unpopulated,
    /// The trigger value is not the required one (e.g. WDISK true).
    NotRequiredValue,
    /// The path is blank (BLANK_FILE).
    Blank,
    /// A reject rule matched.
    Rejected(String),
    /// The file was already announced with this modification time.
    Rebroadcast,
}

/// Fill a path format (`{OUTDIR}/{OUTFILE}{LFRAMENO}.fits`) from keyword
/// values, zero-padding the listed keywords.
pub fn format_path(format: &str, values: &BTreeMap<String, String>, zfill: &BTreeMap<String, usize>) -> Result<String, String> {
    let re = Regex::new(r"\{([A-Za-z0-9_]+)\}").expect("regex");
    let mut missing = None;
    let out = re.replace_all(format, |c: &regex::Captures| {
        let k = &c[1];
        match values.get(k) {
            // KTL names are upper case in Keck's documents, mKTL's lower case: either matches
            Some(v) => match zfill.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)).map(|(_, w)| w) {
                Some(w) => format!("{:0>w$}", v.trim(), w = *w),
                None => v.trim().to_string(),
            },
            None => {
                missing = Some(k.to_string());
                String::new()
            }
        }
    });
    match missing {
        Some(k) => Err(format!("no value for {k}")),
        None => Ok(out.replace("//", "/")),
    }
}

/// Keywords a path format reads.
pub fn format_keywords(format: &str) -> Vec<String> {
    Regex::new(r"\{([A-Za-z0-9_]+)\}").expect("regex").captures_iter(format).map(|c| c[1].to_string()).collect()
}

/// The path a broadcast names, with `/sdata…` mapped to `/s/sdata…`.
pub fn normalise(path: &str) -> String {
    let p = path.trim();
    if p.starts_with("/sdata") { format!("/s{p}") } else { p.to_string() }
}

/// The reject rules (spec §22.2 step 6) on the path resolved first (`..`
/// and links, [`crate::paths::under_roots`]); the resolved path when it is
/// acceptable, else why not.
pub fn reject(path: &str, accept_roots: &[String]) -> Result<String, String> {
    let given = Path::new(path);
    let resolved = match crate::paths::resolve_input(given) {
        Ok(r) if r.is_file() => r,
        Ok(_) => return Err("not a regular file".into()),
        Err(_) => return Err("file does not exist".into()),
    };
    if !crate::paths::under_roots(&resolved, given, accept_roots) {
        return Err(format!("path is not under {}", accept_roots.join(" or ")));
    }
    let resolved = resolved.display().to_string();
    for bad in ["/osiris/test/", "/mira/", "/hireseng/xdchange/", "TEMPFITS.fits"] {
        if resolved.contains(bad) || path.contains(bad) {
            return Err(format!("path contains {bad}"));
        }
    }
    if Regex::new(r"KP\.\d{8}\.\d{5}\.\d{2}-\d\.fits").expect("regex").is_match(&resolved) {
        return Err("KPF sub-exposure file".into());
    }
    Ok(resolved)
}

/// Decide a trigger-keyword broadcast: the value must be populated and, when
/// required, equal the required value (case-insensitive).
pub fn check_trigger(service: &Service, keyword: &str, value: &str) -> Result<(), Ignored> {
    if !keyword.eq_ignore_ascii_case(&service.trigger) {
        return Err(Ignored::OtherKeyword);
    }
    if let Some(req) = &service.required_value {
        if !value.trim().eq_ignore_ascii_case(req) {
            return Err(Ignored::NotRequiredValue);
        }
        return Ok(());
    }
    if value.trim().is_empty() {
        return Err(Ignored::Unpopulated);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esi() -> Service {
        toml_service(
            r#"name = "esi"
ktl = "esi"
instrument = "ESI"
trigger = "WDISK"
required_value = "false"
path_format = "{OUTDIR}/{OUTFILE}{LFRAMENO}.fits"
zfill = { LFRAMENO = 4 }"#,
        )
    }

    fn toml_service(t: &str) -> Service {
        #[derive(serde::Deserialize)]
        struct W {
            service: Vec<Service>,
        }
        use figment::providers::Format;
        let w: W = figment::Figment::from(figment::providers::Toml::string(&format!("[[service]]\n{t}"))).extract().unwrap();
        w.service.into_iter().next().unwrap()
    }

    #[test]
    fn path_formats_are_zero_filled() {
        let s = esi();
        let vals: BTreeMap<String, String> = [("OUTDIR", "/sdata701/esi/2024mar15/"), ("OUTFILE", "e240315_"), ("LFRAMENO", "17")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = format_path(s.path_format.as_deref().unwrap(), &vals, &s.zfill).unwrap();
        assert_eq!(p, "/sdata701/esi/2024mar15/e240315_0017.fits");
        assert_eq!(normalise(&p), "/s/sdata701/esi/2024mar15/e240315_0017.fits");
        assert_eq!(format_keywords("{OUTDIR}/{OUTFILE}{LFRAMENO}.fits"), ["OUTDIR", "OUTFILE", "LFRAMENO"]);
        let mut partial = vals.clone();
        partial.remove("OUTFILE");
        assert!(format_path("{OUTDIR}/{OUTFILE}", &partial, &s.zfill).is_err());
    }

    #[test]
    fn required_values_and_populated_triggers() {
        let s = esi();
        assert_eq!(check_trigger(&s, "WDISK", "false"), Ok(()));
        assert_eq!(check_trigger(&s, "WDISK", "true"), Err(Ignored::NotRequiredValue));
        assert_eq!(check_trigger(&s, "UPTIME", "3"), Err(Ignored::OtherKeyword));
        let n = toml_service("name = \"nsds\"\nktl = \"nsds\"\ninstrument = \"NIRES\"\ntrigger = \"LASTFILE\"");
        assert_eq!(check_trigger(&n, "LASTFILE", " "), Err(Ignored::Unpopulated));
    }

    #[test]
    fn rejects() {
        let d = tempfile::tempdir().unwrap();
        let roots = vec![d.path().display().to_string()];
        let ok = d.path().join("a.fits");
        std::fs::write(&ok, b"x").unwrap();
        assert_eq!(reject(&ok.display().to_string(), &roots), Ok(ok.canonicalize().unwrap().display().to_string()));
        assert!(reject(&d.path().join("missing.fits").display().to_string(), &roots).is_err());
        assert!(reject(&ok.display().to_string(), &["/sdata".to_string()]).is_err());
        // `..` is resolved before the rules: out of the root is out
        let sub = d.path().join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let escape = format!("{}/sub/../../{}", d.path().display(), d.path().file_name().unwrap().to_string_lossy());
        assert!(reject(&format!("{escape}/a.fits"), std::slice::from_ref(&sub.display().to_string())).is_err());
        // a directory or a FIFO is not a file to archive
        assert!(reject(&sub.display().to_string(), &roots).is_err());
        for bad in ["mira", "TEMPFITS.fits"] {
            let p = if bad.ends_with(".fits") { d.path().join(bad) } else { d.path().join(bad).join("x.fits") };
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
            assert!(reject(&p.display().to_string(), &roots).is_err(), "{bad}");
        }
        let kp = d.path().join("KP.20240315.30074.52-1.fits");
        std::fs::write(&kp, b"x").unwrap();
        assert!(reject(&kp.display().to_string(), &roots).is_err());
    }
}
