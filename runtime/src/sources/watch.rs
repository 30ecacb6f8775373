//! New files in a folder: for sources without keywords (guider images, DRP
//! outputs). A file counts when it is closed after writing or moved in, and
//! its name matches the pattern.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Broadcast, now_secs};

/// Whether a file name matches a glob pattern (`*.fits`).
pub fn matches(pattern: &str, path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    glob::Pattern::new(pattern).map(|p| p.matches(&name)).unwrap_or(false)
}

/// A running directory watch; dropping it stops the watch.
pub type Watch = Arc<Mutex<notify::RecommendedWatcher>>;

/// Watch `dir` (recursively) and send matching complete files as broadcasts
/// of the keyword `FILE` for the service `unique`. Returns the watch, which
/// must be kept alive.
///
/// A new sub-folder may receive files before it is watched: notify hands
/// its creation to the handler first and adds its watch afterwards. So a
/// helper thread adds the folder's watch itself (waiting until it is in
/// place) and only then lists what the folder already holds: every file
/// is either listed or seen by the watch, none falls in between (the queue
/// absorbs one announced twice).
pub fn start(dir: &Path, pattern: &str, unique: &str, tx: mpsc::Sender<Broadcast>) -> notify::Result<Watch> {
    let (pattern, unique) = (pattern.to_string(), unique.to_string());
    let (folders_tx, folders) = std_mpsc::channel::<PathBuf>();
    let announce = {
        let (pattern, unique, tx) = (pattern.clone(), unique.clone(), tx.clone());
        move |p: &Path| {
            if matches(&pattern, p) && p.is_file() {
                let b = Broadcast { service: unique.clone(), keyword: "FILE".into(), value: p.display().to_string(), time: now_secs() };
                let _ = tx.blocking_send(b);
            }
        }
    };
    let on_event = announce.clone();
    let w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Create(CreateKind::Folder)) {
            for d in ev.paths {
                let _ = folders_tx.send(d);
            }
            return;
        }
        let complete = matches!(
            ev.kind,
            // a move within the watched tree is reported as To and again as
            // Both (inotify's paired cookie): To alone counts, once
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(RenameMode::To))
        );
        // a rename event carries (from, to): the last path is the new name
        if let (true, Some(p)) = (complete, ev.paths.last()) {
            on_event(p);
        }
    })?;
    let watch: Watch = Arc::new(Mutex::new(w));
    watch.lock().unwrap_or_else(|e| e.into_inner()).watch(dir, RecursiveMode::Recursive)?;
    let weak = Arc::downgrade(&watch);
    std::thread::Builder::new().name(format!("watch-{unique}")).spawn(move || {
        // ends when the watch is dropped (its handler holds the sender)
        for d in folders {
            let Some(w) = weak.upgrade() else { break };
            // a folder already gone, or inside an unwatched link: listed anyway
            let _ = w.lock().unwrap_or_else(|e| e.into_inner()).watch(&d, RecursiveMode::Recursive);
            drop(w);
            for p in existing(&d, &pattern) {
                announce(&p);
            }
        }
    })?;
    Ok(watch)
}

/// Files already in a folder (recursive, following symbolic links but not a
/// link back into a folder being walked; unreadable folders and broken links
/// skipped) that match the pattern.
pub fn existing(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(true)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir() && matches(pattern, e.path()))
        .map(walkdir::DirEntry::into_path)
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_files_follow_links_once_and_match_the_pattern() {
        let d = tempfile::tempdir().unwrap();
        let night = d.path().join("2024mar15");
        std::fs::create_dir_all(night.join("sub")).unwrap();
        for f in ["a.fits", "b.txt", "sub/c.fits"] {
            std::fs::write(night.join(f), b"x").unwrap();
        }
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("linked.fits"), b"x").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), night.join("link")).unwrap();
        // a cycle and a broken link: neither hangs nor counts
        std::os::unix::fs::symlink(&night, night.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(d.path().join("gone.fits"), night.join("broken.fits")).unwrap();
        let got: Vec<String> = existing(&night, "*.fits").iter().map(|p| p.strip_prefix(&night).unwrap().display().to_string()).collect();
        assert_eq!(got, ["a.fits", "link/linked.fits", "sub/c.fits"]);
    }

    #[test]
    fn files_moved_into_new_folders_at_once_are_all_announced() {
        // folders created and filled at once, nested two deep, while other
        // threads keep both cores busy: the window between a folder's
        // creation and its watch must not lose a file
        let root = tempfile::tempdir().unwrap();
        let staging = tempfile::tempdir_in(root.path().parent().unwrap()).unwrap();
        let watched = root.path().join("incoming");
        std::fs::create_dir_all(&watched).unwrap();
        let (tx, mut rx) = mpsc::channel(1024);
        let _watch = start(&watched, "*.fits", "svc", tx).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                    x
                })
            })
            .collect();
        let n = 60;
        for i in 0..n {
            let src = staging.path().join(format!("f{i}.fits"));
            std::fs::write(&src, b"x").unwrap();
            let dest = watched.join(format!("night{i}/sub"));
            std::fs::create_dir_all(&dest).unwrap();
            std::fs::rename(&src, dest.join(format!("f{i}.fits"))).unwrap();
        }
        let mut seen = std::collections::BTreeSet::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while seen.len() < n && std::time::Instant::now() < deadline {
            while let Ok(b) = rx.try_recv() {
                assert_eq!((b.service.as_str(), b.keyword.as_str()), ("svc", "FILE"));
                seen.insert(b.value);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for b in busy {
            b.join().unwrap();
        }
        assert_eq!(seen.len(), n, "announced: {seen:?}");
    }
}
