//! `bench`: the benchmark is a tool outside the product (`rds-forwarder-tools`); this hands off
//! to it, so the command keeps its name.

use std::process::ExitCode;

use anyhow::{Context, Result};

/// `bench`: runs `rds-forwarder-tools bench ARGS` from beside this binary, telling it which
/// forwarder binary to measure; its exit code is ours.
pub(super) fn bench(args: Vec<std::ffi::OsString>) -> Result<ExitCode> {
    let me = std::env::current_exe().context("locating this executable")?;
    let tools = me.with_file_name("rds-forwarder-tools");
    anyhow::ensure!(
        tools.is_file(),
        "the benchmark is a tool outside the product: build it with `cargo build --release \
         -p rds-forwarder-tools` (it is looked for beside this binary, at {})",
        tools.display()
    );
    let status = std::process::Command::new(&tools)
        .arg("bench")
        .args(args)
        .env("RDS_FORWARDER_BOOTSTRAP", &me)
        .status()
        .with_context(|| format!("running {}", tools.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(1),
    })
}
