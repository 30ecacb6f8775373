//! The guest workspace's own native unit tests (components/), run with its
//! own lock file and target directory so `cargo test` covers everything.

#[test]
fn component_unit_tests_pass() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(&root)
        .args(["test", "--locked", "--manifest-path", "components/Cargo.toml", "--target-dir"])
        .arg(root.join("target/components-native"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("run cargo");
    assert!(status.success(), "component unit tests failed");
}
