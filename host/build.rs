//! Builds the default mapper component from `guest/component` for wasm32-wasip2 and hands its
//! path to the host as `RDS_DEFAULT_MAPPER_WASM`, so the binary carries a working mapper and
//! runs with no S3 at all.
//!
//! Set `RDS_DEFAULT_MAPPER_WASM` to a prebuilt `.wasm` to skip the nested build (for example
//! when cross-compiling the host and building the guest once).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "wasm32-wasip2";
const GUEST_PROFILE: &str = "guest";
const GUEST_PACKAGE: &str = "rds-mapper-component";

fn main() {
    println!("cargo:rerun-if-env-changed=RDS_DEFAULT_MAPPER_WASM");
    if let Ok(prebuilt) = env::var("RDS_DEFAULT_MAPPER_WASM") {
        println!("cargo:rerun-if-changed={prebuilt}");
        println!("cargo:rustc-env=RDS_DEFAULT_MAPPER_WASM={prebuilt}");
        return;
    }
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf();
    for watched in [
        // The workspace manifest holds the `guest` profile the component is built with.
        "Cargo.toml",
        "wit",
        "guest/src",
        "guest/Cargo.toml",
        "guest/component/src",
        "guest/component/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // A target dir of its own: the outer build holds the lock on the main one.
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guest-build");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--package",
            GUEST_PACKAGE,
            "--target",
            GUEST_TARGET,
            "--profile",
            GUEST_PROFILE,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the host (e.g. -C target-cpu=native) must not leak into the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "building the default mapper component failed ({s}); if the {GUEST_TARGET} target is \
             missing, run `rustup target add {GUEST_TARGET}`"
        ),
        Err(e) => panic!("could not run {cargo} to build the default mapper component: {e}"),
    }
    let wasm = target_dir
        .join(GUEST_TARGET)
        .join(GUEST_PROFILE)
        .join(format!("{}.wasm", GUEST_PACKAGE.replace('-', "_")));
    assert!(
        Path::new(&wasm).exists(),
        "the guest build did not produce {}",
        wasm.display()
    );
    println!("cargo:rustc-env=RDS_DEFAULT_MAPPER_WASM={}", wasm.display());
}
