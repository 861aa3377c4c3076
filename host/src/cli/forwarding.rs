//! What the commands that map share: the mapper and its settings (`invoke` too), and for
//! `replay` and `backfill` the sink, built into the forwarder of Lambda mode
//! ([`Forwarder::with_mapper`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;

use super::{MapperArgs, load_mapper, parse_key_value};
use crate::lambda::{Delivery, Forwarder};
use crate::sandbox::{Sandbox, SandboxLimits};
use crate::whatap::config::WhatapConfig;

/// The agent name the CLI uses when WHATAP_ONAME is unset.
pub(super) const DEFAULT_ONAME: &str = "rds-forwarder";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum SinkKind {
    /// JSON lines on stdout.
    Stdout,
    /// The WhaTap collector configured by the WHATAP_* environment variables.
    Whatap,
}

/// The mapper and what it maps with: `invoke`'s, `replay`'s and `backfill`'s.
#[derive(Debug, clap::Args)]
pub(super) struct MappingArgs {
    #[command(flatten)]
    pub(super) mapper: MapperArgs,
    /// A mapper setting, KEY=VALUE (repeatable), as MAPPER_SETTINGS gives them in Lambda.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub(super) config: Vec<(String, String)>,
    /// A mapping config (rules without code, JSON), as MAPPER_CONFIG gives it in Lambda.
    #[arg(long, value_name = "FILE")]
    pub(super) rules: Option<PathBuf>,
    /// Time budget of one event, in milliseconds.
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    pub(super) timeout_ms: u64,
}

impl MappingArgs {
    /// The mapping config's text, read from `--rules`.
    pub(super) fn rules_text(&self) -> Result<Option<String>> {
        self.rules
            .as_deref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read the mapping config", path.display()))
            })
            .transpose()
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct ForwardArgs {
    #[command(flatten)]
    pub(super) mapping: MappingArgs,
    /// Where the records go.
    #[arg(long, value_enum, default_value = "whatap")]
    sink: SinkKind,
}

/// The forwarder the arguments describe; a dry run delivers nothing, whatever the sink.
pub(super) async fn forwarder(args: &ForwardArgs, dry_run: bool) -> Result<Forwarder> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = load_mapper(&sandbox, &args.mapping.mapper).await?;
    let delivery = match (dry_run, args.sink) {
        (true, _) => Delivery::DryRun,
        (false, SinkKind::Stdout) => Delivery::Stdout,
        (false, SinkKind::Whatap) => {
            Delivery::Whatap(WhatapConfig::from_env(DEFAULT_ONAME).context("the WhaTap sink")?)
        }
    };
    Ok(Forwarder::with_mapper(
        sandbox,
        mapper,
        delivery,
        args.mapping.config.clone(),
        args.mapping.rules_text()?,
    )?)
}
