//! The command line. Subcommands are thin: they parse arguments and call library code.
//!
//! Exit codes: 0 success; 1 an input or mapper failed (one line on stderr per failure, naming
//! the file and the cause); 2 bad usage.
//!
//! One file per subcommand: [`invoke`], [`replay`], [`backfill`], [`subscribe`],
//! [`describe`], [`compile`], [`test_mapper`], [`collector`], [`bench`] (a hand-off to the
//! tools); [`forwarding`] is what `replay` and `backfill` share. Lambda mode is
//! [`crate::lambda`].

mod backfill;
mod bench;
mod collector;
mod compile;
mod describe;
mod forwarding;
mod invoke;
mod replay;
mod subscribe;
mod test_mapper;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::compile_cache::CompileCache;
use crate::sandbox::{Mapper, Origin, Sandbox};

#[derive(Debug, Parser)]
#[command(
    name = "rds-forwarder",
    version,
    about = "Forward RDS logs and events to WhaTap"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Map Lambda event files and print (or send) the records.
    Invoke(invoke::InvokeArgs),
    /// Print the mapper's name, version and contract version as JSON.
    Describe(MapperArgs),
    /// Run a local WhaTap collector emulator that prints every record it receives.
    Collector(collector::CollectorArgs),
    /// Serve the Lambda Runtime API (the default when AWS_LAMBDA_RUNTIME_API is set and no
    /// command is given).
    Lambda,
    /// Precompile a mapper for this host build (.cwasm): no JIT when it loads.
    Compile(compile::CompileArgs),
    /// Run a mapper over fixture events and compare with the expected JSON lines.
    TestMapper(test_mapper::TestMapperArgs),
    /// Subscribe every RDS log group (and Enhanced Monitoring's) to a destination; only the
    /// filter it names is ever changed.
    Subscribe(subscribe::SubscribeArgs),
    /// Send on the events parked in the failed-event queue, deleting each message only once
    /// its records are confirmed delivered.
    Replay(replay::ReplayArgs),
    /// Deliver a log group's history as live delivery would have (the same record ids),
    /// resumable from a checkpoint.
    Backfill(backfill::BackfillArgs),
    /// Measure throughput, cold start and peak RSS (the benchmark is a tool outside the
    /// product: this hands off to `rds-forwarder-tools bench`, built beside this binary).
    #[command(disable_help_flag = true)]
    Bench {
        /// The benchmark's arguments (`rds-forwarder bench --help` lists them).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct MapperArgs {
    /// A mapper component (.wasm, or .cwasm made by this host); the embedded default if absent.
    #[arg(long, value_name = "PATH")]
    pub(super) mapper: Option<PathBuf>,
}

pub(super) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

pub fn main() -> ExitCode {
    // Lambda runs the bootstrap with no arguments.
    let lambda_default =
        std::env::args_os().len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let cli = if lambda_default {
        Cli {
            command: Command::Lambda,
        }
    } else {
        Cli::parse()
    };
    if matches!(cli.command, Command::Lambda) {
        let tokio_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building the tokio runtime");
        return match tokio_rt.block_on(crate::lambda::serve()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    init_cli_tracing();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    match tokio_rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_cli_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = colour(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// Whether log lines are coloured: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (no-color.org).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Describe(args) => describe::describe(args).await,
        Command::Invoke(args) => invoke::invoke(args).await,
        Command::Collector(args) => collector::collector(args).await,
        Command::Lambda => unreachable!("handled before the CLI runtime starts"),
        Command::Compile(args) => compile::compile(args).await,
        Command::TestMapper(args) => test_mapper::test_mapper(args).await,
        Command::Subscribe(args) => subscribe::subscribe(args).await,
        Command::Replay(args) => replay::replay(args).await,
        Command::Backfill(args) => backfill::backfill(args).await,
        Command::Bench { args } => bench::bench(args),
    }
}

/// Loads `--mapper PATH`, or the embedded default.
pub(super) async fn load_mapper(sandbox: &Sandbox, args: &MapperArgs) -> Result<Arc<Mapper>> {
    load_mapper_from(sandbox, args.mapper.as_deref()).await
}

/// Loads the mapper at `path`, or the embedded default; errors name the file. Compiled code
/// is kept in the user's [`CompileCache`] (unless `RDS_FORWARDER_CACHE=off`), so only the
/// first run of a mapper compiles it.
pub async fn load_mapper_from(sandbox: &Sandbox, path: Option<&Path>) -> Result<Arc<Mapper>> {
    let cache = CompileCache::from_env();
    let load = async |bytes: &[u8], origin: Origin| match &cache {
        Some(cache) => sandbox.load_cached(bytes, origin, cache).await,
        None => sandbox.load(bytes, origin).await,
    };
    match path {
        None => Ok(load(crate::embedded::DEFAULT_MAPPER, Origin::Embedded).await?),
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("{}: cannot read the mapper", path.display()))?;
            let origin = path.display().to_string();
            load(&bytes, Origin::Local(origin.clone()))
                .await
                .with_context(|| format!("{origin}: cannot use it as a mapper"))
        }
    }
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }
}
