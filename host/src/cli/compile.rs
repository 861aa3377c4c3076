//! `compile`: precompile a mapper (`.cwasm`) for this host build.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use super::{MapperArgs, load_mapper};
use crate::embedded;
use crate::sandbox::{Sandbox, SandboxLimits};

#[derive(Debug, clap::Args)]
pub(super) struct CompileArgs {
    #[command(flatten)]
    mapper: MapperArgs,
    /// Output file; for the embedded mapper the default is the name the host looks for
    /// beside its executable.
    #[arg(long, short, value_name = "FILE", conflicts_with = "output_dir")]
    output: Option<PathBuf>,
    /// Write into this directory under the default name.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Compile for this target triple (e.g. aarch64-unknown-linux-gnu) with baseline CPU
    /// features, instead of for this machine's CPU.
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
}

pub(super) async fn compile(args: CompileArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let (bytes, default_name) = match &args.mapper.mapper {
        None => (
            embedded::DEFAULT_MAPPER.to_vec(),
            PathBuf::from(crate::mapper_store::embedded_cwasm_name()),
        ),
        Some(path) => (
            std::fs::read(path)
                .with_context(|| format!("{}: cannot read the mapper", path.display()))?,
            path.with_extension("cwasm"),
        ),
    };
    // Refuse what would not load, before writing anything.
    let mapper = load_mapper(&sandbox, &args.mapper).await?;
    let compiled = crate::sandbox::precompile(&bytes, args.target.as_deref(), mapper.epoch_checks)
        .map_err(|e| anyhow::anyhow!("precompiling failed: {e:#}"))?;
    let out = match (args.output, args.output_dir) {
        (Some(file), _) => file,
        (None, Some(dir)) => dir.join(default_name.file_name().unwrap_or_default()),
        (None, None) => default_name,
    };
    std::fs::write(&out, compiled).with_context(|| format!("{}: cannot write", out.display()))?;
    println!(
        "{}",
        json!({"output": out.display().to_string(), "mapper": mapper.label()})
    );
    Ok(ExitCode::SUCCESS)
}
