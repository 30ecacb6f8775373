//! Shipping products to the archive (spec pipeline.md §17): the rsync of a
//! job's products (`--files-from=<KOAID>.xfr.table`), the MD5 check of every
//! file at the destination, and the ingest API call.
//!
//! Reference defects fixed: rsync is judged by its exit status, not by "any
//! text on stderr" (#27); the `mkdir -p` on the destination is checked; an
//! "already ingested with the same content" reply is success; the ingest call
//! is retried on network errors and HTTP 5xx with a doubling delay.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Transfer as Settings;

/// Why a transfer step failed (the status code is `code()`).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    NoFiles(String),
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Rsync(String),
    #[error("{0}")]
    Verify(String),
    #[error("{0}")]
    Ingest(String),
    #[error("{0}")]
    IngestRefused(String),
}

impl TransferError {
    pub fn code(&self) -> &'static str {
        match self {
            TransferError::NoFiles(_) => "NO_TRANSFER_FILES",
            TransferError::Missing(_) => "TRANSFER_FILE_MISSING",
            TransferError::Rsync(_) => "TRANSFER_ERROR",
            TransferError::Verify(_) => "TRANSFER_VERIFY_ERROR",
            TransferError::Ingest(_) => "INGEST_ERROR",
            TransferError::IngestRefused(_) => "IPAC_NOTIFY_ERROR",
        }
    }
}

/// Where products go: a folder on another host (over ssh) or a local one.
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    Remote { host: String, dir: String },
    Local(PathBuf),
}

impl Destination {
    /// `account@server:/dir` or `server:/dir` is remote; anything else a folder.
    pub fn parse(text: &str) -> Destination {
        match text.split_once(':') {
            Some((host, dir)) if !host.is_empty() && !host.contains('/') && dir.starts_with('/') => {
                Destination::Remote { host: host.to_string(), dir: dir.to_string() }
            }
            _ => Destination::Local(PathBuf::from(text)),
        }
    }

    /// The destination folder of one instrument, date and level.
    pub fn level_dir(&self, instrument: &str, utdatedir: &str, level: i64) -> Destination {
        let tail = format!("{}/{utdatedir}/lev{level}", instrument.to_uppercase());
        match self {
            Destination::Remote { host, dir } => Destination::Remote { host: host.clone(), dir: format!("{}/{tail}", dir.trim_end_matches('/')) },
            Destination::Local(p) => Destination::Local(p.join(tail)),
        }
    }

    /// As rsync writes it (with a trailing `/`).
    pub fn rsync_target(&self) -> String {
        match self {
            Destination::Remote { host, dir } => format!("{host}:{dir}/"),
            Destination::Local(p) => format!("{}/", p.display()),
        }
    }
}

/// Output of a finished command.
pub(crate) struct Ran {
    pub ok: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// Run a command with a wall-clock limit. It runs in its own process
/// group, and when the limit passes — while it runs, or while something it
/// left in the background still holds its output open — the whole group is
/// killed (a shell script's children too).
pub(crate) fn run(cmd: &mut Command, limit: Duration) -> std::io::Result<Ran> {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).spawn()?;
    let group = child.id() as i32;
    // SAFETY: kill(2) on the child's own process group
    let kill_group = || unsafe {
        libc::kill(-group, libc::SIGKILL);
    };
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    for (is_out, mut stream) in [
        (true, Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>),
        (false, Box::new(child.stderr.take().expect("piped")) as Box<dyn Read + Send>),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stream.read_to_string(&mut s);
            let _ = tx.send((is_out, s));
        });
    }
    drop(tx);
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                kill_group();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => {
                kill_group();
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
    };
    // the output, until the deadline; then whatever still holds it is killed
    let (mut stdout, mut stderr, mut lingering) = (String::new(), String::new(), false);
    for _ in 0..2 {
        let got = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(g) => Ok(g),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                lingering = true;
                kill_group();
                rx.recv_timeout(Duration::from_secs(5))
            }
            Err(e) => Err(e),
        };
        match got {
            Ok((true, s)) => stdout = s,
            Ok((false, s)) => stderr = s,
            Err(_) => break,
        }
    }
    Ok(match status {
        Some(s) if lingering => Ran { ok: false, status: format!("{s}, but its background processes held the output past {} s and were killed", limit.as_secs_f64()), stdout, stderr },
        Some(s) => Ran { ok: s.success(), status: s.to_string(), stdout, stderr },
        None => Ran { ok: false, status: format!("killed after {} s", limit.as_secs_f64()), stdout, stderr },
    })
}

/// The last lines of a command's error output (for a status message).
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Words of a command setting (`ssh -o BatchMode=yes` → program + args).
fn words(s: &str) -> (String, Vec<String>) {
    let mut it = s.split_whitespace().map(str::to_string);
    (it.next().unwrap_or_default(), it.collect())
}

/// Write `<levdir>/<name>`: one path per line, relative to the level folder.
pub fn write_xfr_table(levdir: &Path, name: &str, files: &[PathBuf]) -> std::io::Result<PathBuf> {
    let mut text = String::new();
    for f in files {
        let rel = f.strip_prefix(levdir).unwrap_or(f);
        text.push_str(&rel.display().to_string());
        text.push('\n');
    }
    let path = levdir.join(name);
    let tmp = levdir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Make the destination folder (checked, unlike the reference's ssh mkdir).
pub fn make_dir(s: &Settings, dest: &Destination) -> Result<(), TransferError> {
    match dest {
        Destination::Local(p) => std::fs::create_dir_all(p).map_err(|e| TransferError::Rsync(format!("mkdir {}: {e}", p.display()))),
        Destination::Remote { host, dir } => {
            let (prog, mut args) = words(&s.ssh);
            args.extend([host.clone(), "mkdir".into(), "-p".into(), "--".into(), dir.clone()]);
            let r = run(Command::new(&prog).args(&args), Duration::from_secs(s.timeout_s))
                .map_err(|e| TransferError::Rsync(format!("{prog}: {e}")))?;
            if !r.ok {
                return Err(TransferError::Rsync(format!("mkdir -p {dir} on {host}: {} {}", r.status, tail(&r.stderr))));
            }
            Ok(())
        }
    }
}

/// rsync the files listed in `xfr_table` (relative to `levdir`) to `dest`.
/// Judged by rsync's exit status; its messages are returned for the log.
pub fn rsync(s: &Settings, levdir: &Path, xfr_table: &Path, dest: &Destination) -> Result<String, TransferError> {
    let mut cmd = Command::new(&s.rsync);
    cmd.args(&s.rsync_args);
    if matches!(dest, Destination::Remote { .. }) {
        cmd.arg("-e").arg(&s.ssh);
    }
    cmd.arg(format!("--files-from={}", xfr_table.display()));
    cmd.arg(format!("{}/", levdir.display()));
    cmd.arg(dest.rsync_target());
    let r = run(&mut cmd, Duration::from_secs(s.timeout_s)).map_err(|e| TransferError::Rsync(format!("{}: {e}", s.rsync)))?;
    if !r.ok {
        return Err(TransferError::Rsync(format!("rsync {}: {}", r.status, tail(&r.stderr))));
    }
    Ok(format!("{}{}", r.stdout, r.stderr))
}

/// Check the MD5 of every transferred file at the destination against
/// `expected` (relative path → MD5).
pub fn verify(s: &Settings, dest: &Destination, expected: &BTreeMap<String, String>) -> Result<(), TransferError> {
    let found: BTreeMap<String, String> = match dest {
        Destination::Local(dir) => expected
            .keys()
            .map(|rel| {
                let m = crate::fits::write::md5_file(&dir.join(rel)).map_err(|e| TransferError::Verify(format!("{rel} at the destination: {e}")))?;
                Ok((rel.clone(), m))
            })
            .collect::<Result<_, TransferError>>()?,
        Destination::Remote { host, dir } => {
            let (prog, mut args) = words(&s.ssh);
            let mut remote = format!("cd '{}' && md5sum --", dir.replace('\'', r"'\''"));
            for rel in expected.keys() {
                remote.push_str(&format!(" '{}'", rel.replace('\'', r"'\''")));
            }
            args.extend([host.clone(), remote]);
            let r = run(Command::new(&prog).args(&args), Duration::from_secs(s.timeout_s))
                .map_err(|e| TransferError::Verify(format!("{prog}: {e}")))?;
            if !r.ok {
                return Err(TransferError::Verify(format!("md5sum on {host}: {} {}", r.status, tail(&r.stderr))));
            }
            r.stdout
                .lines()
                .filter_map(|l| {
                    let (m, f) = l.split_once("  ")?;
                    Some((f.trim().to_string(), m.trim().to_string()))
                })
                .collect()
        }
    };
    for (rel, want) in expected {
        match found.get(rel) {
            Some(m) if m == want => {}
            Some(m) => return Err(TransferError::Verify(format!("{rel}: MD5 {m} at the destination, {want} here"))),
            None => return Err(TransferError::Verify(format!("{rel}: missing at the destination"))),
        }
    }
    Ok(())
}

/// The ingest API URL (spec §17 step 12).
pub fn ingest_url(api: &str, instrument: &str, level: i64, koaid: &str, utdatedir: &str, reingest: bool, rtui: bool) -> String {
    let mut url = format!("{api}instrument={}&ingesttype=lev{level}", instrument.to_uppercase());
    if level == 2 && instrument.eq_ignore_ascii_case("KCWI") {
        url.push_str(&format!("&utdate={utdatedir}"));
    } else {
        url.push_str(&format!("&koaid={koaid}"));
    }
    if reingest {
        url.push_str("&reingest=true");
    }
    if !rtui {
        url.push_str("&rtui=false");
    }
    url
}

/// What the ingest API said.
#[derive(Clone, Debug, PartialEq)]
pub enum Ingested {
    Complete,
    /// Already ingested with the same content (success).
    AlreadyIngested(String),
}

/// Call the ingest API; retried on network errors and HTTP 5xx.
pub async fn ingest(s: &Settings, client: &reqwest::Client, url: &str) -> Result<Ingested, TransferError> {
    let tries = s.ingest_tries.max(1);
    let mut delay = Duration::from_secs_f64(s.ingest_retry_delay_s.max(0.0));
    let mut last = String::new();
    for attempt in 1..=tries {
        let answer = client.get(url).timeout(Duration::from_secs_f64(s.ingest_timeout_s.max(0.1))).send().await;
        match answer {
            Ok(resp) if resp.status().is_server_error() => last = format!("{url}: HTTP {}", resp.status()),
            Ok(resp) if !resp.status().is_success() => {
                return Err(TransferError::IngestRefused(format!("{url}: HTTP {}", resp.status())));
            }
            Ok(resp) => {
                let body: serde_json::Value = resp.json().await.map_err(|e| TransferError::IngestRefused(format!("{url}: bad JSON: {e}")))?;
                let status = body.get("APIStatus").and_then(|v| v.as_str()).unwrap_or("");
                if status == "COMPLETE" {
                    return Ok(Ingested::Complete);
                }
                let message = body.get("Message").and_then(|v| v.as_str()).unwrap_or("");
                let text = format!("{status} {message}").to_lowercase();
                if s.already_ingested.iter().any(|m| !m.is_empty() && text.contains(&m.to_lowercase())) {
                    return Ok(Ingested::AlreadyIngested(format!("{status} {message}").trim().to_string()));
                }
                return Err(TransferError::IngestRefused(format!("{url}: APIStatus {status:?} {message}")));
            }
            Err(e) => last = format!("{url}: {e}"),
        }
        if attempt < tries {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Err(TransferError::Ingest(format!("{last} (after {tries} tries)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(
            Destination::parse("koaxfr@ipac.example:/koadata/incoming"),
            Destination::Remote { host: "koaxfr@ipac.example".into(), dir: "/koadata/incoming".into() }
        );
        assert_eq!(Destination::parse("/data/xfr"), Destination::Local("/data/xfr".into()));
        assert_eq!(Destination::parse("relative/dir"), Destination::Local("relative/dir".into()));
        let d = Destination::parse("h:/k/").level_dir("nires", "20190615", 0);
        assert_eq!(d.rsync_target(), "h:/k/NIRES/20190615/lev0/");
    }

    #[test]
    fn ingest_urls_as_the_reference_builds_them() {
        let api = "https://ipac.example/ingest?";
        assert_eq!(
            ingest_url(api, "nires", 0, "NR.20190615.12571.36", "20190615", false, true),
            "https://ipac.example/ingest?instrument=NIRES&ingesttype=lev0&koaid=NR.20190615.12571.36"
        );
        assert_eq!(
            ingest_url(api, "GUIDER", 0, "GR.20240315.30000.10_K1ACAMA", "20240315", true, false),
            "https://ipac.example/ingest?instrument=GUIDER&ingesttype=lev0&koaid=GR.20240315.30000.10_K1ACAMA&reingest=true&rtui=false"
        );
        assert_eq!(ingest_url(api, "KCWI", 2, "KB.x", "20240315", false, true), "https://ipac.example/ingest?instrument=KCWI&ingesttype=lev2&utdate=20240315");
        assert_eq!(ingest_url(api, "HIRES", 2, "HI.x", "20240315", false, true), "https://ipac.example/ingest?instrument=HIRES&ingesttype=lev2&koaid=HI.x");
    }

    #[test]
    fn commands_are_judged_by_exit_status_and_bounded() {
        let r = run(Command::new("sh").args(["-c", "echo warning >&2; exit 0"]), Duration::from_secs(5)).unwrap();
        assert!(r.ok && r.stderr.contains("warning"), "stderr text alone is not a failure");
        let r = run(Command::new("sh").args(["-c", "exit 23"]), Duration::from_secs(5)).unwrap();
        assert!(!r.ok && r.status.contains("23"));
        let t = Instant::now();
        let r = run(Command::new("sleep").arg("10"), Duration::from_millis(300)).unwrap();
        assert!(!r.ok && r.status.contains("killed") && t.elapsed() < Duration::from_secs(5));
        // a script whose child outlives it: the group is killed at the limit
        let t = Instant::now();
        let r = run(Command::new("sh").args(["-c", "sleep 30 & sleep 30"]), Duration::from_millis(300)).unwrap();
        assert!(!r.ok && r.status.contains("killed") && t.elapsed() < Duration::from_secs(5), "{}", r.status);
        // one that exits but leaves a child holding the output open
        let t = Instant::now();
        let r = run(Command::new("sh").args(["-c", "echo done; sleep 30 &"]), Duration::from_millis(500)).unwrap();
        assert!(!r.ok && r.status.contains("background") && t.elapsed() < Duration::from_secs(8), "{} after {:?}", r.status, t.elapsed());
        assert!(r.stdout.contains("done") || r.stdout.is_empty());
    }
}
