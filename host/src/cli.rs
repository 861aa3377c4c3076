//! The command line. Subcommands are thin: they parse arguments and call library code.
//!
//! Exit codes: 0 success; 1 an input or mapper failed (one line on stderr per failure, naming
//! the file and the cause); 2 bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::collector::{Collector, Faults, PrintReport};
use crate::embedded;
use crate::sandbox::bindings::Invocation;
use crate::sandbox::{Mapper, Origin, Sandbox, SandboxLimits};
use crate::sink::{RecordSink, stdout::Stdout};
use crate::whatap::config::WhatapConfig;
use crate::whatap::license::License;
use crate::whatap::sink::WhatapSink;

/// The agent name the CLI uses when WHATAP_ONAME is unset.
const DEFAULT_ONAME: &str = "rds-forwarder";

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
    Invoke(InvokeArgs),
    /// Print the mapper's name, version and contract version as JSON.
    Describe(MapperArgs),
    /// Run a local WhaTap collector emulator that prints every record it receives.
    Collector(CollectorArgs),
    /// Serve the Lambda Runtime API (the default when AWS_LAMBDA_RUNTIME_API is set and no
    /// command is given).
    Lambda,
    /// Precompile a mapper for this host build (.cwasm): no JIT when it loads.
    Compile(CompileArgs),
    /// Run a mapper over fixture events and compare with the expected JSON lines.
    TestMapper(TestMapperArgs),
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
struct TestMapperArgs {
    #[command(flatten)]
    mapper: MapperArgs,
    /// Write the mapper's output as the expected lines instead of comparing (then review them).
    #[arg(long)]
    update: bool,
    /// The receive time (epoch ms) passed to the mapper, so output is reproducible.
    #[arg(long, default_value_t = 1_700_000_000_000, value_name = "EPOCH_MS")]
    now_ms: i64,
    /// Mapper settings, KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// A directory of `NAME.json` events, each with `NAME.expected.jsonl` beside it (or, when
    /// the events are in `events/`, `expected/NAME.jsonl`).
    #[arg(value_name = "FIXTURES_DIR")]
    fixtures: PathBuf,
}

#[derive(Debug, clap::Args)]
struct CompileArgs {
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

#[derive(Debug, clap::Args)]
struct CollectorArgs {
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
}

#[derive(Debug, clap::Args)]
struct MapperArgs {
    /// A mapper component (.wasm, or .cwasm made by this host); the embedded default if absent.
    #[arg(long, value_name = "PATH")]
    mapper: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SinkKind {
    /// JSON lines on stdout.
    Stdout,
    /// The WhaTap collector configured by the WHATAP_* environment variables.
    Whatap,
}

#[derive(Debug, clap::Args)]
struct InvokeArgs {
    #[command(flatten)]
    mapper: MapperArgs,
    /// Where the records go.
    #[arg(long, value_enum, default_value = "stdout")]
    sink: SinkKind,
    /// A mapper setting, KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// A mapping config (rules without code, JSON), passed as the `rules` setting.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Time budget of one event, in milliseconds.
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    timeout_ms: u64,
    /// Use this as the receive time (epoch ms) instead of the clock, for reproducible output.
    #[arg(long, value_name = "EPOCH_MS", hide = true)]
    now_ms: Option<i64>,
    /// Print each event's summary as a JSON line on stderr.
    #[arg(long)]
    summary: bool,
    /// Lambda event files (JSON), one event each.
    #[arg(required = true, value_name = "EVENT_FILE")]
    events: Vec<PathBuf>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Describe(args) => {
            let sandbox = Sandbox::new(SandboxLimits::default());
            // Without --mapper, the default as Lambda loads it: the package's precompiled
            // artifact when one lies beside the executable (origin `packaged`).
            let mapper = match &args.mapper {
                None => crate::mapper_store::load_embedded(&sandbox).await?,
                Some(_) => load_mapper(&sandbox, &args).await?,
            };
            let line = json!({
                "name": mapper.info.name,
                "version": mapper.info.version,
                "contract": mapper.info.contract,
                "origin": mapper.origin.to_string(),
                "time_budget": mapper.has_time_budget(),
            });
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke(args) => invoke(args).await,
        Command::Collector(args) => collector(args).await,
        Command::Lambda => unreachable!("handled before the CLI runtime starts"),
        Command::Compile(args) => compile(args).await,
        Command::TestMapper(args) => test_mapper(args).await,
        Command::Bench { args } => bench(args),
    }
}

/// `bench`: runs `rds-forwarder-tools bench ARGS` from beside this binary, telling it which
/// forwarder binary to measure; its exit code is ours.
fn bench(args: Vec<std::ffi::OsString>) -> Result<ExitCode> {
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

/// Loads `--mapper PATH`, or the embedded default.
async fn load_mapper(sandbox: &Sandbox, args: &MapperArgs) -> Result<Arc<Mapper>> {
    load_mapper_from(sandbox, args.mapper.as_deref()).await
}

/// Loads the mapper at `path`, or the embedded default; errors name the file.
pub async fn load_mapper_from(sandbox: &Sandbox, path: Option<&Path>) -> Result<Arc<Mapper>> {
    match path {
        None => Ok(sandbox.load_embedded().await?),
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("{}: cannot read the mapper", path.display()))?;
            let origin = path.display().to_string();
            sandbox
                .load(&bytes, Origin::Local(origin.clone()))
                .await
                .with_context(|| format!("{origin}: cannot use it as a mapper"))
        }
    }
}

async fn invoke(args: InvokeArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = load_mapper(&sandbox, &args.mapper).await?;
    let mut sink: Box<dyn RecordSink> = match args.sink {
        SinkKind::Stdout => Box::new(Stdout),
        SinkKind::Whatap => {
            let config = WhatapConfig::from_env(DEFAULT_ONAME).context("the WhaTap sink")?;
            Box::new(WhatapSink::new(config))
        }
    };
    let budget = Duration::from_millis(args.timeout_ms);
    let mut settings = args.config.clone();
    if let Some(path) = &args.rules {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the mapping config", path.display()))?;
        settings.push(("rules".into(), text));
    }
    let mut failed = 0usize;
    for path in &args.events {
        let now = args.now_ms.unwrap_or_else(now_ms);
        let invocation = Invocation {
            request_id: format!("cli-{}", file_name(path)),
            function_name: "rds-forwarder-cli".into(),
            deadline_ms: now.saturating_add(args.timeout_ms as i64),
            received_ms: now,
            config: settings.clone(),
        };
        let event = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("error: {}: cannot read the event: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let ran = sandbox
            .run(&mapper, &event, &invocation, sink, budget)
            .await;
        sink = ran.sink;
        match ran.result {
            Ok(summary) => {
                if args.summary {
                    let skipped: serde_json::Map<String, serde_json::Value> = summary
                        .skipped
                        .iter()
                        .map(|s| (s.reason.clone(), json!(s.count)))
                        .collect();
                    eprintln!(
                        "{}",
                        json!({
                            "file": path.display().to_string(),
                            "event_kind": summary.event_kind,
                            "records": summary.records,
                            "batches": summary.batches,
                            "skipped": skipped,
                            "split": summary.split,
                            "mapper": mapper.label(),
                            "guest_memory_bytes": ran.guest_peak_bytes,
                        })
                    );
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    sink.close().await;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn compile(args: CompileArgs) -> Result<ExitCode> {
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

/// The fixture events of a test-mapper directory, with where their expected lines live.
fn fixture_pairs(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let (events, expected_dir) = if dir.join("events").is_dir() {
        (dir.join("events"), Some(dir.join("expected")))
    } else {
        (dir.to_path_buf(), None)
    };
    let mut pairs = Vec::new();
    for entry in std::fs::read_dir(&events)
        .with_context(|| format!("{}: cannot list fixtures", events.display()))?
    {
        let path = entry?.path();
        let name = file_name(&path);
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if stem.ends_with(".payload") {
            continue;
        }
        let expected = match &expected_dir {
            Some(d) => d.join(format!("{stem}.jsonl")),
            None => events.join(format!("{stem}.expected.jsonl")),
        };
        pairs.push((path, expected));
    }
    pairs.sort();
    anyhow::ensure!(
        !pairs.is_empty(),
        "{}: no NAME.json fixture events",
        events.display()
    );
    Ok(pairs)
}

/// Where two record lists first differ, in words.
fn first_difference(
    actual: &[serde_json::Value],
    expected: &[serde_json::Value],
) -> Option<String> {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        if a != e {
            let key = ["category", "time", "tags", "fields", "content", "line"]
                .into_iter()
                .find(|k| a.get(k) != e.get(k))
                .unwrap_or("order of keys");
            return Some(format!(
                "record {i} differs in {key}: got {}, expected {}",
                a.get(key).unwrap_or(&json!(null)),
                e.get(key).unwrap_or(&json!(null))
            ));
        }
    }
    (actual.len() != expected.len())
        .then(|| format!("{} records, expected {}", actual.len(), expected.len()))
}

async fn test_mapper(args: TestMapperArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = load_mapper(&sandbox, &args.mapper).await?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for (event_path, expected_path) in fixture_pairs(&args.fixtures)? {
        let event = std::fs::read(&event_path)
            .with_context(|| format!("{}: cannot read", event_path.display()))?;
        let invocation = Invocation {
            request_id: format!("test-{}", file_name(&event_path)),
            function_name: "rds-forwarder-test-mapper".into(),
            deadline_ms: args.now_ms.saturating_add(60_000),
            received_ms: args.now_ms,
            config: args.config.clone(),
        };
        let ran = sandbox
            .run(
                &mapper,
                &event,
                &invocation,
                Box::new(crate::sink::Memory::default()),
                Duration::from_secs(60),
            )
            .await;
        let fixture = event_path.display().to_string();
        let outcome = match ran.result {
            Err(e) => Err(format!("the mapper failed: {e}")),
            Ok(_) => {
                let records: Vec<serde_json::Value> = crate::sink::into_memory(ran.sink)
                    .map(|m| {
                        m.records()
                            .iter()
                            .map(crate::record_json::to_json)
                            .collect()
                    })
                    .unwrap_or_default();
                if args.update {
                    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
                    std::fs::write(&expected_path, text)
                        .with_context(|| format!("{}: cannot write", expected_path.display()))?;
                    Ok(records.len())
                } else {
                    match std::fs::read_to_string(&expected_path) {
                        Err(e) => Err(format!("{}: {e}", expected_path.display())),
                        Ok(text) => {
                            let expected: Result<Vec<serde_json::Value>, _> = text
                                .lines()
                                .filter(|l| !l.trim().is_empty())
                                .map(serde_json::from_str)
                                .collect();
                            match expected {
                                Err(e) => {
                                    Err(format!("{}: not JSON lines: {e}", expected_path.display()))
                                }
                                Ok(expected) => match first_difference(&records, &expected) {
                                    None => Ok(records.len()),
                                    Some(diff) => Err(diff),
                                },
                            }
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(n) => {
                passed += 1;
                println!(
                    "{}",
                    json!({"fixture": fixture, "status": if args.update { "updated" } else { "pass" }, "records": n})
                );
            }
            Err(why) => {
                failed += 1;
                println!(
                    "{}",
                    json!({"fixture": fixture, "status": "fail", "reason": why})
                );
            }
        }
    }
    println!(
        "{}",
        json!({"mapper": mapper.label(), "passed": passed, "failed": failed})
    );
    println!("test-mapper: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn collector(args: CollectorArgs) -> Result<ExitCode> {
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
    Collector::new(license, Faults::default())
        .serve(listener, std::sync::Arc::new(PrintReport))
        .await;
    Ok(ExitCode::SUCCESS)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
