//! Shared helpers of the end-to-end suites: the shared data folder, a
//! throw-away archive (SQLite by default) and running jobs on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use koa_dep::config::Config;
use koa_dep::pipeline::{Archiver, JobOptions, JobReport};

pub mod mktl;

/// `../shared/data` next to the repository, or `KOA_DEP_SHARED_DATA`.
/// Panics (the suite fails, it is not skipped) when it is missing.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("KOA_DEP_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    assert!(dir.join("MANIFEST.txt").is_file(), "shared test data not found at {} (set KOA_DEP_SHARED_DATA)", dir.display());
    dir
}

/// The repository's own files (fixtures, examples).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh archive in a temporary folder.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub cfg: Config,
}

impl Scratch {
    /// SQLite in the temp folder, no services, no keyword tables.
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.archive.root = dir.path().join("archive");
        cfg.database.url = format!("sqlite://{}", dir.path().join("koa.db").display());
        // one precompiled-component cache for every test run
        cfg.components.cache_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache"));
        Scratch { dir, cfg }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The configuration with the demo's services fixture (written to
    /// `services.json` in the folder) answering every service.
    pub fn with_services(&self) -> Config {
        let mut cfg = self.cfg.clone();
        let f = self.path("services.json");
        std::fs::write(&f, serde_json::to_string(&koa_dep::samples::demo::services()).expect("fixture JSON")).expect("write the fixture");
        cfg.services.fixture = Some(f);
        cfg
    }
}

/// A multi-threaded runtime for a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Connect an archiver for a configuration.
pub fn archiver(rt: &tokio::runtime::Runtime, cfg: Config) -> Arc<Archiver> {
    Arc::new(rt.block_on(koa_dep::app::archiver(cfg)).expect("archiver"))
}

/// Archive one file (on a blocking thread, as the daemon does).
pub fn archive(rt: &tokio::runtime::Runtime, a: &Arc<Archiver>, instrument: &str, path: &Path, opts: JobOptions) -> JobReport {
    let (a, instrument, path) = (a.clone(), instrument.to_string(), path.to_path_buf());
    rt.block_on(rt.spawn_blocking(move || a.archive_file(&instrument, &path, &opts)))
        .expect("join")
        .expect("archive")
}

/// Codes of a report's diagnostics.
pub fn codes(r: &JobReport) -> Vec<String> {
    r.diagnostics.iter().map(|d| d.code.clone()).collect()
}

/// Poll `done` every 50 ms until it holds or `secs` pass; returns whether it held.
pub async fn wait_until<F, Fut>(secs: u64, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    done().await
}

/// Write a generated frame to `path` whole (temporary name, then rename), as
/// instruments finish their files.
pub fn drop_frame(frame: &koa_dep::samples::Frame, path: &Path) {
    let tmp = path.with_extension("part");
    frame.write(&tmp).expect("write frame");
    std::fs::rename(&tmp, path).expect("rename frame");
}

/// The head keyword tables are public KOA data: read them from shared data
/// when present, else the minimal copy this test writes.
pub fn repo_keyword_tables() -> PathBuf {
    let d = std::env::var_os("KOA_DEP_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"))
        .join("keyword-tables/head");
    if d.join("KOA_NIRES_Keyword_Table.txt").is_file() {
        return d;
    }
    let dir = std::env::temp_dir().join(format!("koa-kwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let head = "FITSKeyword\tDBKeyword\tSource\tMetadataDatatype\tUnits\tDBDatatype\tMetadataWidth\tNullsAllowed\tValidateFormat\tCheckValues\tInputFormat\r\n";
    let rows = "KOAID\tKOAID\tKOA\tchar\t\t\t32\tN\tY\tY\t\r\nPROGID\tPROGID\tKOA\tchar\t\t\t32\tN\tY\tN\t\r\nUTC\tUTC\tDCS\tchar\t\t\t16\tN\tY\tN\ttime\r\n";
    std::fs::write(dir.join("KOA_NIRES_Keyword_Table.txt"), format!("{head}{rows}")).unwrap();
    dir
}

/// Run a daemon on its own task until the returned switch is used (or
/// dropped); the handle yields its result after the clean stop.
pub fn spawn_daemon(d: Arc<koa_dep::daemon::Daemon>) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        d.run(async {
            let _ = rx.await;
        })
        .await
    });
    (tx, task)
}

/// A minimal SMTP server: accepts every message, sends each one's text to `tx`.
pub async fn smtp_server(tx: tokio::sync::mpsc::UnboundedSender<String>) -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = tokio::io::BufReader::new(r).lines();
                w.write_all(b"220 localhost ESMTP test\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(buf) = data.as_mut() {
                        if line == "." {
                            tx.send(data.take().unwrap()).unwrap();
                            w.write_all(b"250 OK queued\r\n").await.unwrap();
                        } else {
                            buf.push_str(&line);
                            buf.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 localhost\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            w.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    port
}

pub mod ingest_loop;
