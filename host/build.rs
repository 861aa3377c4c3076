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
    ensure_guest_target();
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
        Ok(s) => panic!("building the default mapper component failed ({s}); see the errors above"),
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

/// Makes sure the toolchain building us has the guest's target, adding it through rustup when
/// it is missing: a machine with the right Rust but without `wasm32-wasip2` (a plain `rustup
/// toolchain install`, or a toolchain that ignored `rust-toolchain.toml`'s `targets`) then builds
/// on the first try. Without rustup, the message says what to install.
fn ensure_guest_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let has_target = |root: &Path| root.join("lib/rustlib").join(GUEST_TARGET).is_dir();
    if sysroot.as_deref().is_some_and(has_target) {
        return;
    }
    // The toolchain cargo runs under, as rustup's proxies tell the build script.
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    println!("cargo:warning=the {GUEST_TARGET} target is missing; adding it with rustup (once)");
    let mut add = Command::new("rustup");
    add.args(["target", "add", GUEST_TARGET]);
    if let Some(t) = &toolchain {
        add.args(["--toolchain", t]);
    }
    match add.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "the {GUEST_TARGET} target is missing and `rustup target add {GUEST_TARGET}` failed \
             ({s}); run it by hand (it needs the network once), then build again"
        ),
        Err(e) => panic!(
            "the {GUEST_TARGET} target is missing and rustup could not be run ({e}); install \
             the target for this toolchain (with rustup: `rustup target add {GUEST_TARGET}`), \
             then build again"
        ),
    }
}
