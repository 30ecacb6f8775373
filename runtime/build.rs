//! Builds the WebAssembly components (components/, its own cargo workspace)
//! for wasm32-wasip2 and embeds them in the runtime (design §6).
//!
//! * nested `cargo build --release --locked --target wasm32-wasip2` with its
//!   own target directory (`<target>/wasm-components`; sharing the outer one
//!   deadlocks on the build lock) and a scrubbed environment (no RUSTFLAGS,
//!   no compiler wrappers, nothing of the outer build's target/profile);
//! * `rerun-if-changed` from the `.d` dependency files cargo writes;
//! * a missing wasm32-wasip2 target is added with rustup, or the build stops
//!   with the exact command to run;
//! * `KOA_DEP_PREBUILT_COMPONENTS=<dir>` skips the nested build and embeds
//!   `<dir>/<name>.wasm` (for packagers);
//! * the components are built with wasm `simd128`, and the thumbnail
//!   component (built here or prebuilt) is checked to have it.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Components embedded in the binary (test-only ones stay in the artifact dir).
const EMBED: &[&str] = &[
    "deimos", "esi", "guider", "hires", "kcwi", "kpf", "lris", "mosfire", "nirc2", "nires", "nirspec", "osiris", "scales",
    "thumbnail",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let components = root.join("components");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=KOA_DEP_PREBUILT_COMPONENTS");
    // sqlx::migrate! embeds the migrations: a new file must rebuild the crate
    println!("cargo:rerun-if-changed=migrations");

    let artifacts = match env::var_os("KOA_DEP_PREBUILT_COMPONENTS") {
        Some(dir) => PathBuf::from(dir),
        None => build_components(&root, &components, &out_dir),
    };

    check_simd(&artifacts.join("thumbnail.wasm"));

    let mut src = String::new();
    writeln!(src, "pub const ARTIFACT_DIR: &str = {:?};", artifacts.display().to_string()).unwrap();
    writeln!(src, "pub static BUILTIN: &[(&str, &[u8])] = &[").unwrap();
    for name in EMBED {
        let wasm = artifacts.join(format!("{name}.wasm"));
        if wasm.exists() {
            println!("cargo:rerun-if-changed={}", wasm.display());
            writeln!(src, "    ({name:?}, include_bytes!({:?})),", wasm.display().to_string()).unwrap();
        } else if env::var_os("KOA_DEP_PREBUILT_COMPONENTS").is_some() {
            panic!("KOA_DEP_PREBUILT_COMPONENTS: {} is missing (every built-in component must be there)", wasm.display());
        } else if components.join(name).is_dir() {
            println!("cargo:warning=component {name} was not built ({} missing)", wasm.display());
        }
    }
    writeln!(src, "];").unwrap();
    std::fs::write(out_dir.join("components.rs"), src).unwrap();
}

/// The thumbnail component must be built with wasm SIMD (its JPEG transform
/// and pixel loops are written for it): its core module's `target_features`
/// section, which rustc writes, has to list `simd128`. A prebuilt component
/// without it is refused here rather than running several times slower.
fn check_simd(wasm: &Path) {
    let Ok(bytes) = std::fs::read(wasm) else { return };
    let section = bytes.windows(15).position(|w| w == b"target_features");
    let ok = section.is_some_and(|at| bytes[at..].windows(8).take(512).any(|w| w == b"\x07simd128"));
    if !ok {
        panic!(
            "{} was built without wasm SIMD: build the components with -C target-feature=+simd128 \
             (CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS; docs/components.md)",
            wasm.display()
        );
    }
}

/// The outer target directory, from OUT_DIR (<target>/<profile>/build/<pkg>/out).
fn target_dir(out_dir: &Path) -> PathBuf {
    if let Some(t) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    out_dir.ancestors().find(|p| p.file_name().is_some_and(|n| n == "build")).and_then(|b| b.parent()?.parent()).map(Path::to_path_buf).unwrap_or_else(|| out_dir.join("target"))
}

fn ensure_target(rustc: &str) {
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let installed = sysroot.as_ref().is_some_and(|s| Path::new(s).join("lib/rustlib").join(TARGET).exists());
    if installed {
        return;
    }
    let toolchain = env::var("RUSTUP_TOOLCHAIN").unwrap_or_default();
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if !toolchain.is_empty() {
        cmd.args(["--toolchain", &toolchain]);
    }
    let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        panic!(
            "\n\nThe {TARGET} target is not installed and could not be added automatically.\n\
             Install it with:\n\n    rustup target add {TARGET}{}\n\n\
             (rust-toolchain.toml lists it, so a rustup-managed cargo normally installs it by itself.)\n",
            if toolchain.is_empty() { String::new() } else { format!(" --toolchain {toolchain}") }
        );
    }
}

fn build_components(root: &Path, components: &Path, out_dir: &Path) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    ensure_target(&rustc);
    let target_dir = target_dir(out_dir).join("wasm-components");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--locked", "--target", TARGET, "--manifest-path"])
        .arg(components.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // a clean environment: nothing of the outer build leaks in
    for (k, _) in env::vars_os() {
        let k = k.to_string_lossy().to_string();
        let keep = k == "CARGO_HOME" || k == "CARGO_MAKEFLAGS" || k == "CARGO_NET_OFFLINE";
        if (k.starts_with("CARGO_") && !keep)
            || k.starts_with("RUSTC_")
            || k == "RUSTFLAGS"
            || k == "RUSTDOCFLAGS"
            || k == "TARGET"
            || k == "HOST"
            || k == "OUT_DIR"
            || k == "OPT_LEVEL"
            || k == "PROFILE"
            || k == "DEBUG"
            || k == "NUM_JOBS"
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("RUSTC", &rustc);
    // wasm SIMD (every engine we run has it): vectorised pixel loops and DCT
    cmd.env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", "-C target-feature=+simd128");
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    if !status.success() {
        panic!("building the WebAssembly components failed (see the cargo output above)");
    }
    let artifacts = target_dir.join(TARGET).join("release");
    // rerun when any source the components were built from changes
    println!("cargo:rerun-if-changed={}", components.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", components.join("Cargo.lock").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    if let Ok(dir) = std::fs::read_dir(&artifacts) {
        for f in dir.flatten() {
            if f.path().extension().is_some_and(|e| e == "d") {
                if let Ok(text) = std::fs::read_to_string(f.path()) {
                    for dep in dep_paths(&text) {
                        println!("cargo:rerun-if-changed={dep}");
                    }
                }
            }
        }
    }
    artifacts
}

/// Paths listed in a make-style `.d` file (`target: dep dep\ with\ space …`).
fn dep_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((_, deps)) = line.split_once(": ") else { continue };
        let mut cur = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    cur.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                _ => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out.sort();
    out.dedup();
    out
}
