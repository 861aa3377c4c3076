//! `rds-forwarder-tools`: the tools that are not the product. `rds-forwarder bench` hands off
//! to `rds-forwarder-tools bench`, so both spell the same command.
//!
//! Exit codes: 0 success; 1 a failure (one line on stderr naming it); 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rds_forwarder_tools::bench;

#[derive(Debug, Parser)]
#[command(
    name = "rds-forwarder-tools",
    version,
    about = "Tools around rds-forwarder: the benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure throughput (native, wasm, with WhaTap delivery, against the decode-only floor),
    /// cold start and peak RSS, and print one table. Run from the repository root, release build.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Measure this mapper's throughput instead of the embedded one's (cold start is always
    /// the embedded default's).
    #[arg(long, value_name = "PATH")]
    mapper: Option<PathBuf>,
    /// The repository's fixtures directory (samples, events).
    #[arg(long, default_value = "fixtures", value_name = "DIR")]
    fixtures: PathBuf,
    /// Seconds spent measuring each throughput cell.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    seconds: f64,
    /// Process starts per cold-start variant.
    #[arg(long, default_value_t = 15, value_name = "N")]
    cold_runs: usize,
    /// Only the payloads whose name contains this (e.g. `mysql`, `rds-event`).
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Skip cold start and peak RSS (they start processes).
    #[arg(long)]
    no_processes: bool,
    /// Short runs (0.2 s per cell, 5 starts per variant): a smoke test, not figures to quote.
    #[arg(long)]
    quick: bool,
    /// Print the report as one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// The forwarder binary whose cold start and peak RSS are measured (default: the one
    /// `rds-forwarder bench` was run as, else `rds-forwarder` beside this binary).
    #[arg(long, value_name = "PATH", env = "RDS_FORWARDER_BOOTSTRAP")]
    bootstrap: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let outcome = match cli.command {
        Command::Bench(args) => tokio_rt.block_on(run_bench(args)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run_bench(args: BenchArgs) -> Result<()> {
    let seconds = if args.quick { 0.2 } else { args.seconds };
    let per_cell = Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d <= Duration::from_secs(600))
        .with_context(|| format!("--seconds {seconds}: expected 0 to 600"))?;
    let bootstrap = match args.bootstrap {
        Some(path) => path,
        None => std::env::current_exe()
            .context("locating this executable")?
            .with_file_name("rds-forwarder"),
    };
    let options = bench::Options {
        fixtures: args.fixtures,
        per_cell,
        cold_runs: if args.quick { 5 } else { args.cold_runs },
        only: args.only,
        skip_processes: args.no_processes,
        mapper: args.mapper,
        bootstrap,
    };
    if !options.fixtures.join("logs/MANIFEST.tsv").exists() {
        anyhow::bail!(
            "{}: no logs/MANIFEST.tsv; run from the repository root or pass --fixtures",
            options.fixtures.display()
        );
    }
    let report = bench::run(&options).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
