//! `collector`: the local WhaTap collector emulator, printing every record it receives.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::collector::{Collector, Faults, PrintReport};
use crate::whatap::license::License;

#[derive(Debug, clap::Args)]
pub(super) struct CollectorArgs {
    /// Address to listen on, e.g. 127.0.0.1:6600 (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: std::net::SocketAddr,
    /// The project access key senders must use (or set WHATAP_LICENSE, or use
    /// --license-file: a key on the command line is visible to other users of the machine).
    #[arg(
        long,
        value_name = "KEY",
        env = "WHATAP_LICENSE",
        hide_env_values = true,
        required_unless_present = "license_file"
    )]
    license: Option<String>,
    /// A file holding the project access key (surrounding whitespace ignored); it takes
    /// precedence over WHATAP_LICENSE.
    #[arg(long, value_name = "FILE")]
    license_file: Option<PathBuf>,
    /// Fault injection for tests: from this many-th data frame on, every data frame resets
    /// its connection unread (a collector that breaks mid-run).
    #[arg(long, value_name = "N", hide = true)]
    fail_from_data_frame: Option<usize>,
}

pub(super) async fn collector(args: CollectorArgs) -> Result<ExitCode> {
    let license = match (&args.license, &args.license_file) {
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the license", path.display()))?;
            License::parse(text.trim()).context("--license-file")?
        }
        (Some(key), None) => License::parse(key).context("--license")?,
        (None, None) => anyhow::bail!("--license, WHATAP_LICENSE or --license-file is required"),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "collector listening on {addr} for project {}",
        license.pcode
    );
    let faults = Faults {
        fail_from_data_frame: args.fail_from_data_frame,
        ..Faults::default()
    };
    Collector::new(license, faults)
        .serve(listener, std::sync::Arc::new(PrintReport))
        .await;
    Ok(ExitCode::SUCCESS)
}
