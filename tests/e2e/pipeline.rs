//! The level-0 pipeline on generated NIRES frames: products, lev-0 fidelity,
//! duplicates, reprocessing, rejects, damaged files, logs and bookkeeping.

use std::path::{Path, PathBuf};

use koa_dep::db::Status;
use koa_dep::fits;
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::demo::{Obs, nires};
use koa_dep_tests::*;

fn frame_at(s: &Scratch, dir: &str, obs: &Obs, seed: u64) -> PathBuf {
    let (name, frame) = nires("imag", "object", "C272", obs, seed);
    let p = s.path(&format!("{dir}/{name}"));
    frame.write(&p).unwrap();
    p
}

fn lev0(s: &Scratch) -> PathBuf {
    s.path("archive/NIRES/20240315/lev0")
}

#[test]
fn products_bookkeeping_and_lev0_fidelity() {
    let s = Scratch::new();
    let mut cfg = s.with_services();
    cfg.archive.keyword_tables = Some(repo_keyword_tables());
    let rt = runtime();
    let a = archiver(&rt, cfg);
    let input = frame_at(&s, "sdata1500/nires9/20240315", &Obs::new("2024-03-15", "08:21:14.52", 17), 1);
    let r = archive(&rt, &a, "NIRES", &input, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let koaid = r.koaid.clone().unwrap();
    assert_eq!(koaid, "NI.20240315.30074.52");
    let dir = lev0(&s);
    for ext in ["fits", "jpg", "metadata.table", "md5sum.table", "log", "diff.json"] {
        assert!(dir.join(format!("{koaid}.{ext}")).is_file(), "{ext} missing");
    }
    // no temporary files are left behind
    assert!(std::fs::read_dir(&dir).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with('.')));
    // every original card image and every data byte survive; edits are the only changes
    let orig = fits::load(&input).unwrap();
    let out = fits::load(&dir.join(format!("{koaid}.fits"))).unwrap();
    let edited: Vec<&str> = r.changes.iter().map(|c| c.key.as_str()).collect();
    for c in &orig.hdus[0].cards {
        if edited.contains(&c.key.as_str()) {
            continue;
        }
        assert!(out.hdus[0].cards.iter().any(|o| o.raw == c.raw), "card {} lost or altered", c.key);
    }
    let (ib, ob) = (std::fs::read(&input).unwrap(), std::fs::read(dir.join(format!("{koaid}.fits"))).unwrap());
    let n = orig.hdus[0].data_len as usize;
    assert_eq!(&ib[orig.hdus[0].data_start as usize..][..n], &ob[out.hdus[0].data_start as usize..][..n]);
    assert_eq!(ob.len() % 2880, 0);
    // header edits as the spec fixes them
    let v = |k: &str| out.hdus[0].value(k).cloned();
    assert_eq!(v("KOAID"), Some(fits::HValue::Text(format!("{koaid}.fits"))));
    assert_eq!(v("PROGID"), Some(fits::HValue::Text("C272".into())));
    assert_eq!(v("PROGPI"), Some(fits::HValue::Text("deKleer".into())));
    assert_eq!(v("OA"), Some(fits::HValue::Text("jpelletier".into())));
    assert_eq!(v("FILTER"), Some(fits::HValue::Text("Kp".into())));
    // the diff names the step of each change
    let diff: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{koaid}.diff.json"))).unwrap()).unwrap();
    let changes = diff["changes"].as_array().unwrap();
    let step_of = |k: &str| changes.iter().find(|c| c["key"] == k).map(|c| c["step"].as_str().unwrap().to_string());
    assert_eq!(step_of("KOAID").as_deref(), Some("set_koaid"));
    assert_eq!(step_of("PROGPI").as_deref(), Some("set_prog_info"));
    assert_eq!(step_of("NPIXSAT").as_deref(), Some("set_npixsat"));
    // the md5 table lists exactly the transferable products
    let md5 = std::fs::read_to_string(dir.join(format!("{koaid}.md5sum.table"))).unwrap();
    let listed: Vec<&str> = md5.lines().map(|l| &l[34..]).collect();
    assert_eq!(listed, vec![format!("{koaid}.fits"), format!("{koaid}.jpg"), format!("{koaid}.metadata.table")]);
    // the row and the headers JSON
    let row = rt.block_on(a.db.get(r.id)).unwrap().unwrap();
    assert_eq!(row.status, "COMPLETE");
    assert_eq!(row.koaid.as_deref(), Some(koaid.as_str()));
    assert_eq!(row.semid.as_deref(), Some("2024A_C272"));
    assert_eq!(row.koaimtyp.as_deref(), Some("object"));
    assert_eq!(row.propint, None, "the default 18 months is not recorded");
    assert!(row.filesize_mb.unwrap() > 4.0 && row.archsize_mb.unwrap() > row.filesize_mb.unwrap());
    // the input's MD5 is computed only when a KOAID clash needs it
    assert_eq!(row.md5, None);
    let h = rt.block_on(a.db.header(&koaid)).unwrap().unwrap();
    assert_eq!(h["KOAID"]["value"], format!("{koaid}.fits"));
    assert_eq!(h["HISTORY"]["value"][0], "written by the koa-dep sample generator");
    // the per-file log names the steps
    let log = std::fs::read_to_string(dir.join(format!("{koaid}.log"))).unwrap();
    assert!(log.contains("KOAID NI.20240315.30074.52") && log.contains("finished COMPLETE"), "{log}");
    // the raw stage copy
    assert!(row.stage_file.as_deref().is_some_and(|p| Path::new(p).is_file()));
}

#[test]
fn frames_sharing_date_and_time_are_all_archived_and_a_resent_file_once() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    // 54 different frames with one DATE-OBS/UTC (keyword service down on a KCWI night)
    let obs = |n| Obs::new("2024-03-15", "08:21:14.52", n);
    let mut koaids = std::collections::BTreeSet::new();
    let mut paths = Vec::new();
    for n in 1..=54u32 {
        let p = frame_at(&s, "sdata1500/nires9/20240315", &obs(n), 100 + n as u64);
        let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
        assert_eq!(r.status, Status::Complete, "frame {n}: {:?}", r.diagnostics);
        let dup = codes(&r).contains(&"DUPLICATE_KOAID".to_string());
        assert_eq!(dup, n > 1, "frame {n}: {:?}", codes(&r));
        koaids.insert(r.koaid.clone().unwrap());
        paths.push(p);
    }
    let first = Some(paths[0].clone());
    // a re-sent frame whose KOAID was pushed along the chain is recognised too
    let tenth = archive(&rt, &a, "NIRES", &paths[9], JobOptions::default());
    assert_eq!((tenth.status, tenth.status_code.as_deref()), (Status::Invalid, Some("DUPLICATE_FILE")), "{:?}", tenth.message);
    assert!(tenth.message.as_deref().unwrap_or("").contains("NI.20240315.30074.61"), "{:?}", tenth.message);
    assert_eq!(koaids.len(), 54);
    assert!(koaids.contains("NI.20240315.30074.52") && koaids.contains("NI.20240315.30075.05"));
    for k in &koaids {
        let f = fits::load(&lev0(&s).join(format!("{k}.fits"))).unwrap();
        assert_eq!(f.hdus[0].value("KOAID"), Some(&fits::HValue::Text(format!("{k}.fits"))));
    }
    // the same file offered again is not archived twice
    let again = archive(&rt, &a, "NIRES", first.as_ref().unwrap(), JobOptions::default());
    assert_eq!((again.status, again.status_code.as_deref()), (Status::Invalid, Some("DUPLICATE_FILE")));
    assert!(again.products.is_empty());
    let n_fits = std::fs::read_dir(lev0(&s)).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "fits")).count();
    assert_eq!(n_fits, 54);
}

#[test]
fn reprocessing_keeps_the_koaid_and_the_history() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    let p = frame_at(&s, "sdata1500/nires9/20240315", &Obs::new("2024-03-15", "08:21:14.52", 17), 1);
    let r1 = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r1.status, Status::Complete);
    let koaid = r1.koaid.clone().unwrap();
    let stale = lev0(&s).join(format!("{koaid}_old.jpg"));
    std::fs::write(&stale, b"old").unwrap();
    let r2 = archive(&rt, &a, "NIRES", &p, JobOptions { reprocess: true, progid: Some("U123".into()), ..Default::default() });
    assert_eq!(r2.status, Status::Complete, "{:?}", r2.diagnostics);
    assert_eq!((r2.id, r2.koaid.as_deref()), (r1.id, Some(koaid.as_str())));
    assert!(!stale.exists(), "old products of the KOAID are removed");
    let f = fits::load(&lev0(&s).join(format!("{koaid}.fits"))).unwrap();
    assert_eq!(f.hdus[0].value("PROGID"), Some(&fits::HValue::Text("U123".into())), "--progid override");
    let hist = rt.block_on(a.db.history(r1.id)).unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].status, "COMPLETE");
    let row = rt.block_on(a.db.get(r1.id)).unwrap().unwrap();
    assert_eq!(row.reprocess, 1);
    assert_eq!(row.attempts, 2);
}

#[test]
fn rejected_paths_and_mismatched_names_are_invalid() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    let p = frame_at(&s, "sdata1500/nires9/mira", &Obs::new("2024-03-15", "08:21:14.52", 17), 1);
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Invalid, Some("FILEPATH_REJECT")));
    assert!(r.steps.is_empty() && r.koaid.is_none(), "rejected before any component ran: {:?}", r.steps);
    assert_eq!(codes(&r), vec!["FILEPATH_REJECT"]);
    // nothing lost (reference defect #28): the invalid file is kept under stage/udf
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    let kept = s.cfg.archive.root.join("NIRES/stage/udf").join(&today).join(p.display().to_string().trim_start_matches('/'));
    assert_eq!(std::fs::read(&kept).ok(), std::fs::read(&p).ok(), "udf copy at {}", kept.display());
    let q = frame_at(&s, "sdata1500/nires9/x", &Obs::new("2024-03-15", "08:21:15.52", 18), 2);
    let renamed = q.with_file_name("renamed.fits");
    std::fs::rename(&q, &renamed).unwrap();
    let r = archive(&rt, &a, "NIRES", &renamed, JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Invalid, Some("MISMATCHED_FILENAME")));
    assert!(r.message.unwrap().contains("v240315_0018.fits != renamed.fits"));
    // no original file name at all: INVALID BAD_OFNAME (the set_ofName
    // step no longer stops the job first) and the file kept under stage/udf
    let (name, mut f) = nires("imag", "object", "C272", &Obs::new("2024-03-15", "08:21:16.52", 19), 3);
    f.hdus[0].cards.retain(|c| c.key != "DATAFILE");
    let n = s.path(&format!("sdata1500/nires9/y/{name}"));
    f.write(&n).unwrap();
    let r = archive(&rt, &a, "NIRES", &n, JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Invalid, Some("BAD_OFNAME")), "{:?}", r.diagnostics);
    // (under the frame's UT date: identification found it)
    let kept = s.cfg.archive.root.join("NIRES/stage/udf/20240315").join(n.display().to_string().trim_start_matches('/'));
    assert!(std::fs::read(&kept).ok() == std::fs::read(&n).ok(), "udf copy at {}: {:?}", kept.display(), r.message);
}

/// Damage a good frame in the ways real files are damaged.
#[test]
fn damaged_files_are_tolerated_or_invalid_never_lost() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    let good = |n: u32| frame_at(&s, "sdata1500/nires9/d", &Obs::new("2024-03-15", "08:21:14.52", n), n as u64);
    // missing END: the END card blanked
    let p = good(1);
    let mut b = std::fs::read(&p).unwrap();
    let end = b.chunks(80).position(|c| c.starts_with(b"END ")).unwrap() * 80;
    b[end..end + 3].copy_from_slice(b"   ");
    std::fs::write(&p, &b).unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    assert!(codes(&r).contains(&"MISSING_END".into()));
    let out = std::fs::read(&r.products[0]).unwrap();
    assert!(out.chunks(80).any(|c| c.starts_with(b"END ")), "lev0 has an END card");
    // short final padding
    let p = good(2);
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 1000]).unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    assert!(codes(&r).contains(&"SHORT_PADDING".into()));
    assert_eq!(std::fs::metadata(&r.products[0]).unwrap().len() % 2880, 0);
    // short data
    let p = good(3);
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Invalid, Some("CORRUPTED_HDU")), "{:?}", r.diagnostics);
    // zero bytes, not FITS, missing
    let p = s.path("sdata1500/nires9/d/empty.fits");
    std::fs::write(&p, b"").unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Invalid, Some("EMPTY_FILE")));
    let p = s.path("sdata1500/nires9/d/notes.fits");
    std::fs::write(&p, b"observing notes, not an image\n").unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Invalid, Some("UNREADABLE_FITS")));
    let r = archive(&rt, &a, "NIRES", &s.path("sdata1500/nires9/d/gone.fits"), JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("FITS_NOT_FOUND")));
    // every one of them has a row with its status
    for id in 1..=6 {
        let row = rt.block_on(a.db.get(id)).unwrap().unwrap();
        assert!(row.status != "PROCESSING" && row.status != "QUEUED", "row {id} left {}", row.status);
    }
}

#[test]
fn table_extensions_get_extension_tables() {
    use koa_dep::samples::{Data, FrameHdu, int, text};
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    let (name, mut frame) = nires("imag", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", 17), 1);
    // a slit-mask design table: 8-char name, float32 width, int32 id, float64 length
    let row = |name: &str, w: f32, id: i32, len: f64| {
        let mut b = format!("{name:<8}").into_bytes();
        b.extend(w.to_be_bytes());
        b.extend(id.to_be_bytes());
        b.extend(len.to_be_bytes());
        b
    };
    let mut bytes = row("slit1", 0.7, 1, 175.0);
    bytes.extend(row("slit2", 1.5, 2, 25.25));
    let mut cards = vec![
        text("XTENSION", "BINTABLE"),
        int("BITPIX", 8),
        int("NAXIS", 2),
        int("NAXIS1", 24),
        int("NAXIS2", 2),
        int("PCOUNT", 0),
        int("GCOUNT", 1),
        int("TFIELDS", 4),
    ];
    for (i, (n, f)) in [("SLITNAME", "8A"), ("WIDTH", "1E"), ("ID", "1J"), ("LENGTH", "1D")].iter().enumerate() {
        cards.push(text(&format!("TTYPE{}", i + 1), n));
        cards.push(text(&format!("TFORM{}", i + 1), f));
    }
    cards.push(text("EXTNAME", "Mask Design"));
    frame.hdus.push(FrameHdu { cards, data: Data::Bytes(bytes) });
    let p = s.path(&format!("sdata1500/nires9/20240315/{name}"));
    frame.write(&p).unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let k = r.koaid.unwrap();
    let t = std::fs::read_to_string(lev0(&s).join(format!("{k}.ext1.Mask_Design.tbl"))).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "\\ Extended Header Name: Mask Design");
    // widths from TFORM: 8A → 8, 1E/1J/1D → 1; all at least 16
    assert_eq!(lines[1], "|SLITNAME        |WIDTH           |ID              |LENGTH          |");
    assert_eq!(lines[2], "|char            |char            |char            |char            |");
    assert_eq!(lines[5], " slit1            0.7              1                175.0           ");
    assert_eq!(lines[6], " slit2            1.5              2                25.25           ");
    assert!(std::fs::read_to_string(lev0(&s).join(format!("{k}.md5sum.table"))).unwrap().contains(".ext1.Mask_Design.tbl"));
}

#[test]
fn files_glob_lists_unless_confirmed() {
    let s = Scratch::new();
    let rt = runtime();
    let dir = s.path("sdata1500/nires9/g");
    for n in 1..=3 {
        frame_at(&s, "sdata1500/nires9/g", &Obs::new("2024-03-15", "08:21:14.52", n), n as u64);
    }
    let files = koa_dep::cli::expand_files(&format!("{}/", dir.display())).unwrap();
    assert_eq!(files.len(), 3);
    let args = |confirm| koa_dep::cli::ArchiveArgs {
        instrument: "NIRES".into(),
        files: Some(format!("{}/*.fits", dir.display())),
        confirm,
        json: true,
        ..Default::default()
    };
    let mut cfg = s.with_services();
    cfg.archive.root = s.path("archive");
    assert_eq!(rt.block_on(koa_dep::cli::archive(cfg.clone(), args(false))).unwrap(), 0);
    let a = archiver(&rt, cfg.clone());
    assert!(rt.block_on(a.db.get(1)).unwrap().is_none(), "listing archives nothing");
    assert_eq!(rt.block_on(koa_dep::cli::archive(cfg, args(true))).unwrap(), 0);
    assert_eq!(rt.block_on(a.db.get(3)).unwrap().unwrap().status, "COMPLETE");
}

#[test]
fn no_keyword_tables_is_a_warning_and_service_failures_are_warnings() {
    let s = Scratch::new();
    let rt = runtime();
    // no services at all, no keyword tables: without the telescope number
    // the run stops with a transient code (the daemon retries it)
    let a = archiver(&rt, s.cfg.clone());
    let p = frame_at(&s, "sdata1500/nires9/20240315", &Obs::new("2024-03-15", "08:21:14.52", 17), 1);
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("TELNR_API_ERROR")), "{:?}", r.diagnostics);
    assert!(koa_dep::daemon::TRANSIENT.contains(&"TELNR_API_ERROR"));
    let published = |e: &std::fs::DirEntry| {
        let n = e.file_name().to_string_lossy().to_string();
        n.ends_with(".fits") || n.ends_with(".md5sum.table") || n.ends_with(".jpg")
    };
    assert!(!lev0(&s).is_dir() || !std::fs::read_dir(lev0(&s)).unwrap().flatten().any(|e| published(&e)), "nothing published");
    // with the telescope configured, the other services' failures are warnings
    let mut cfg = s.cfg.clone();
    cfg.instruments.entry("NIRES".into()).or_default().telescope = Some(2);
    let a = archiver(&rt, cfg);
    let p = frame_at(&s, "sdata1500/nires9/20240315", &Obs::new("2024-03-15", "08:22:14.52", 18), 2);
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let c = codes(&r);
    for code in ["METADATA_SCHEMA_MISSING", "PROP_API_ERROR", "PROPINT_ERROR"] {
        assert!(c.contains(&code.to_string()), "{code} missing from {c:?}");
    }
    assert!(r.diagnostics.iter().all(|d| d.severity == koa_dep::pipeline::Severity::Warn));
    let koaid = r.koaid.unwrap();
    assert!(lev0(&s).join(format!("{koaid}.fits")).is_file());
    assert!(!lev0(&s).join(format!("{koaid}.metadata.table")).exists());
    let f = fits::load(&lev0(&s).join(format!("{koaid}.fits"))).unwrap();
    assert_eq!(f.hdus[0].value("PROGPI"), Some(&fits::HValue::Text("NONE".into())));
    assert_eq!(f.hdus[0].value("OA"), Some(&fits::HValue::Text("null".into())));
}

fn cli_args(f: impl FnOnce(&mut koa_dep::cli::ArchiveArgs)) -> koa_dep::cli::ArchiveArgs {
    let mut a = koa_dep::cli::ArchiveArgs { instrument: "NIRES".into(), json: true, ..Default::default() };
    f(&mut a);
    a
}

#[test]
fn rows_by_id_and_by_query_and_dry_runs() {
    let s = Scratch::new();
    let rt = runtime();
    let mut cfg = s.with_services();
    cfg.archive.root = s.path("archive");
    let a = archiver(&rt, cfg.clone());
    let mut paths = Vec::new();
    for n in 1..=3u32 {
        let secs = format!("08:2{n}:14.52");
        paths.push(frame_at(&s, "sdata1500/nires9/q", &Obs::new("2024-03-15", &secs, n), n as u64));
    }
    let cli = |args| rt.block_on(koa_dep::cli::archive(cfg.clone(), args)).unwrap();
    for p in &paths {
        assert_eq!(cli(cli_args(|a| a.filepath = Some(p.clone()))), 0);
    }
    let rows: Vec<_> = (1..=3).map(|id| rt.block_on(a.db.get(id)).unwrap().unwrap()).collect();
    assert!(rows.iter().all(|r| r.status == "COMPLETE"));
    // a dry run of a new file: the header changes, nothing written, no row left
    let new = frame_at(&s, "sdata1500/nires9/q", &Obs::new("2024-03-15", "09:00:00.00", 9), 9);
    let r = a.archive_file("NIRES", &new, &JobOptions { dry_run: true, ..Default::default() }).unwrap();
    assert!(r.changes.iter().any(|c| c.key == "PROGID" && c.new.as_deref().is_some_and(|v| v.contains("C272"))), "{:?}", r.changes);
    assert!(r.changes.iter().any(|c| c.key == "KOAID" && c.action == "added"), "{:?}", r.changes);
    assert!(r.products.is_empty());
    assert!(rt.block_on(a.db.get(r.id)).unwrap().is_none(), "the dry run's row is gone");
    assert!(!s.path("archive/NIRES/20240315/lev0").join(format!("{}.fits", r.koaid.clone().unwrap())).exists());
    // a dry run of an archived file changes nothing either (no history copy, no reset)
    let before = rt.block_on(a.db.get(1)).unwrap().unwrap();
    assert_eq!(cli(cli_args(|a| {
        a.filepath = Some(paths[0].clone());
        a.reprocess = true;
        a.dry_run = true;
    })), 0);
    assert_eq!(rt.block_on(a.db.get(1)).unwrap().unwrap(), before);
    assert!(rt.block_on(a.db.history(1)).unwrap().is_empty());
    // --dbid re-runs one row under its KOAID (a history copy is kept)
    assert_eq!(cli(cli_args(|a| a.dbid = Some(2))), 0);
    let after = rt.block_on(a.db.get(2)).unwrap().unwrap();
    assert_eq!((after.status.as_str(), after.koaid.as_deref()), ("COMPLETE", rows[1].koaid.as_deref()));
    assert_eq!(rt.block_on(a.db.history(2)).unwrap().len(), 1);
    // by query: rows with status ERROR only, listed first, run with --confirm
    rt.block_on(a.db.set_status(3, Status::Error)).unwrap();
    let query = |confirm| cli_args(|a| {
        a.status = Some("error".into());
        a.starttime = Some("2024-03-15T00:00:00".into());
        a.confirm = confirm;
    });
    assert_eq!(cli(query(false)), 0);
    assert_eq!(rt.block_on(a.db.get(3)).unwrap().unwrap().status, "ERROR", "listing runs nothing");
    assert_eq!(cli(query(true)), 0);
    assert_eq!(rt.block_on(a.db.get(3)).unwrap().unwrap().status, "COMPLETE");
    assert!(rt.block_on(a.db.history(1)).unwrap().is_empty(), "rows outside the query untouched");
    assert_eq!(rt.block_on(a.db.history(3)).unwrap().len(), 1);
    // a time window that excludes everything
    let none = rt.block_on(a.db.select(&koa_dep::db::Selection { level: 0, instrument: Some("NIRES".into()), end: Some("2024-03-14 23:59:59".into()), ..Default::default() })).unwrap();
    assert!(none.is_empty());
}

/// Reference defect #25: a failed lev-0 write deleted the target even when
/// it pre-existed (the archived file of an earlier run). Only the write's
/// own temporary file goes; the archived products stay.
#[test]
fn a_failed_write_leaves_the_archived_file_alone() {
    let s = Scratch::new();
    let rt = runtime();
    let a = archiver(&rt, s.with_services());
    let p = frame_at(&s, "sdata1500/nires9/20240315", &Obs::new("2024-03-15", "08:21:14.52", 17), 1);
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    let koaid = r.koaid.unwrap();
    let fits = lev0(&s).join(format!("{koaid}.fits"));
    let before = std::fs::read(&fits).unwrap();
    // the writer's temporary name is taken by a folder: the write fails
    let tmp = lev0(&s).join(format!(".{koaid}.fits.{}.tmp", std::process::id()));
    std::fs::create_dir(&tmp).unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions { reprocess: true, ..Default::default() });
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("WRITE_FITS_ERROR")), "{:?}", r.message);
    assert_eq!(std::fs::read(&fits).unwrap(), before, "the archived file survives");
    assert!(lev0(&s).join(format!("{koaid}.md5sum.table")).is_file(), "and its product set");
}

/// `archive.corrected_hundredths` is off by default: KOAIDs keep the
/// reference's hundredths (the first two digits of the un-padded
/// microseconds: .07 s → 70), which archived KOAIDs depend on.
#[test]
fn koaid_hundredths_follow_the_reference_by_default() {
    let s = Scratch::new();
    let rt = runtime();
    assert!(!koa_dep::config::Config::default().archive.corrected_hundredths);
    for (corrected, want) in [(false, "NR.20240315.30074.70"), (true, "NR.20240315.30074.07")] {
        let mut cfg = s.with_services();
        cfg.archive.corrected_hundredths = corrected;
        cfg.archive.root = s.path(&format!("archive-{corrected}"));
        cfg.database.url = format!("sqlite://{}", s.path(&format!("h-{corrected}.db")).display());
        let a = archiver(&rt, cfg);
        let (name, f) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.07", 17), 1);
        let p = s.path(&format!("sdata1500/nires9/h{corrected}/{name}"));
        f.write(&p).unwrap();
        let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
        assert_eq!(r.koaid.as_deref(), Some(want), "corrected_hundredths = {corrected}: {:?}", r.diagnostics);
    }
}
