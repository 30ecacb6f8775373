//! Side-by-side benchmark: koa-dep's one-shot `archive` against a Python
//! re-creation of the reference DEP's heavy level-0 path
//! (`benches/versus_reference.py`: astropy load, image statistics, `writeto`,
//! a matplotlib JPEG, the MD5 table) on the same generated frames, with the
//! floor of the machine beside them (`cp` + fsync + `md5sum` of the file).
//!
//! `cargo bench --bench versus [-- [RUNS] [nires|kcwi|deimos ...]]`
//! (default 5 runs of NIRES, KCWI and DEIMOS). The three commands alternate
//! (their order rotates every run) so a noisy neighbour hurts them alike;
//! every koa-dep run archives a new frame into one pre-migrated SQLite store
//! with a warm component cache, as an operator's one-shot run would. Prints
//! per frame: the median wall time and its spread, the peak resident memory of
//! each child (wait4's ru_maxrss), the ratio and the floor. Not a test; CI
//! does not run it. Needs python3 with numpy, astropy, matplotlib and
//! scikit-image, and the KOA keyword tables (`support::keyword_tables`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use koa_dep::samples::frames::{Size, frame};

mod support;

/// One timed child: wall seconds and peak resident MiB.
#[derive(Clone, Copy)]
struct Run {
    wall: f64,
    rss_mib: f64,
}

fn timed(cmd: &mut Command) -> Run {
    // the bench's own peak must stay small (see `generate`)
    let t = Instant::now();
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 reaps the child and reports its own peak RSS (KiB)
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(pid, child.id() as i32, "wait4");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{cmd:?} failed ({status})");
    Run { wall, rss_mib: ru.ru_maxrss as f64 / 1024.0 }
}

/// (median, min, max)
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (median, s[0], s[n - 1])
}

/// The reference renderer of an instrument's level-0 preview.
fn mode(instrument: &str) -> &'static str {
    match instrument {
        "KCWI" => "histeq",
        "DEIMOS" => "mosaic",
        _ => "asinh",
    }
}

/// Write one sample frame (run as a child of the bench, so the bench itself
/// stays small: Linux carries a process's peak RSS across fork and exec, and
/// a child's ru_maxrss would otherwise start at the bench's).
fn generate(instrument: &str, n: u32, dir: &Path) {
    let (name, f) = frame(instrument, Size::Full, n).unwrap_or_else(|| panic!("no sample frame for {instrument}"));
    f.write(&dir.join(name)).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if let [cmd, instrument, n, dir] = &args[..] {
        if cmd == "generate" {
            return generate(instrument, n.parse().unwrap(), Path::new(dir));
        }
    }
    let runs: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(5).max(1);
    let mut instruments: Vec<String> =
        args.iter().filter(|a| a.parse::<usize>().is_err()).map(|a| a.to_uppercase()).collect();
    if instruments.is_empty() {
        instruments = vec!["NIRES".into(), "KCWI".into(), "DEIMOS".into()];
    }
    let koa = env!("CARGO_BIN_EXE_koa-dep");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/versus_reference.py");
    let dir = tempfile::tempdir_in(std::env::var_os("KOA_DEP_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
        .unwrap();
    let d = dir.path();
    let fixture = d.join("services.json");
    std::fs::write(&fixture, serde_json::to_string(&koa_dep::samples::demo::services()).unwrap()).unwrap();
    let config = d.join("koa-dep.toml");
    let cache = std::env::temp_dir().join("koa-dep-bench-cache");
    std::fs::write(
        &config,
        format!(
            "[archive]\nroot = {:?}\nkeyword_tables = {:?}\n[database]\nurl = {:?}\n[components]\ncache_dir = {:?}\n[services]\nfixture = {:?}\n",
            d.join("archive"),
            support::keyword_tables(),
            format!("sqlite://{}", d.join("koa.db").display()),
            cache,
            fixture,
        ),
    )
    .unwrap();
    let archive = |instrument: &str, file: &Path| {
        let mut c = Command::new(koa);
        c.arg("--config").arg(&config).args(["archive", instrument, "--filepath"]).arg(file);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        c
    };
    println!("versus: {runs} runs per frame, koa-dep one-shot `archive` (warm component cache, SQLite) vs the reference path");
    println!(
        "{:<8} {:>16} {:>9} {:>16} {:>9} {:>7} {:>14} {:>10}",
        "frame", "reference s", "ref MiB", "koa-dep s", "koa MiB", "ratio", "floor s", "koa/floor"
    );
    for (k, instrument) in instruments.iter().enumerate() {
        // a new frame (new KOAID) per run, plus one for the warm-up
        let inputs: Vec<PathBuf> = (0..=runs)
            .map(|i| {
                let n = (k * 1000 + i) as u32 * 7;
                let dir = d.join("in").join(format!("{instrument}-{i}"));
                let me = std::env::current_exe().unwrap();
                timed(Command::new(me).arg("generate").arg(instrument).arg(n.to_string()).arg(&dir));
                let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
                file
            })
            .collect();
        // warm-up: migrates the store, compiles (or loads) the components, fills the page cache
        timed(&mut archive(instrument, &inputs[0]));
        let (mut reference, mut ours, mut floor) = (Vec::new(), Vec::new(), Vec::new());
        for (i, input) in inputs[1..].iter().enumerate() {
            let out = d.join("ref").join(format!("{instrument}-{i}"));
            let copy = d.join("floor").join(format!("{instrument}-{i}.fits"));
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            let mut steps: Vec<(u8, Command)> = vec![
                (0, {
                    let mut c = Command::new("python3");
                    c.arg(&script).args(["--mode", mode(instrument), "--fits"]).arg(input).arg("--out").arg(&out);
                    c.stderr(std::process::Stdio::null());
                    c
                }),
                (1, archive(instrument, input)),
                (2, {
                    let mut c = Command::new("sh");
                    c.args(["-c", "cp \"$1\" \"$2\" && sync \"$2\" && md5sum \"$2\" >/dev/null", "floor"]).arg(input).arg(&copy);
                    c
                }),
            ];
            steps.rotate_left(i % 3);
            for (which, mut c) in steps {
                let r = timed(&mut c);
                match which {
                    0 => reference.push(r),
                    1 => ours.push(r),
                    _ => floor.push(r),
                }
            }
        }
        let walls = |v: &[Run]| spread(&v.iter().map(|r| r.wall).collect::<Vec<_>>());
        let peak = |v: &[Run]| v.iter().map(|r| r.rss_mib).fold(0.0, f64::max);
        let (rm, rlo, rhi) = walls(&reference);
        let (om, olo, ohi) = walls(&ours);
        let (fm, flo, fhi) = walls(&floor);
        println!(
            "{:<8} {:>16} {:>9.0} {:>16} {:>9.0} {:>6.1}x {:>14} {:>9.2}x",
            instrument,
            format!("{rm:.3} ({rlo:.2}-{rhi:.2})"),
            peak(&reference),
            format!("{om:.3} ({olo:.3}-{ohi:.3})"),
            peak(&ours),
            rm / om,
            format!("{fm:.3} ({flo:.3}-{fhi:.3})"),
            om / fm
        );
    }
}
