//! Cold start and peak RSS: this binary started in Lambda mode against the Runtime API
//! emulator, as Lambda starts `bootstrap`, beside a minimal `lambda_runtime` binary
//! (`lambda-hello`, built with this one) for the baseline.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{LocalCollector, Options, Scratch};
use crate::runtime_api::{Outcome, RuntimeApi};
use rds_forwarder::embedded;
use rds_forwarder::mapper_store::embedded_cwasm_name;
use rds_forwarder::sandbox::EpochChecks;
use rds_mapper::generate::{self, Size};

#[derive(Debug, Clone)]
pub struct ColdStart {
    pub variant: String,
    pub median_ms: f64,
    pub min_ms: f64,
    pub runs: usize,
    /// The `lambda-hello` row every other is compared with.
    pub baseline: bool,
    /// The row of the function as `deploy/package.sh` packages it.
    pub packaged: bool,
}

#[derive(Debug, Clone)]
pub struct PeakRss {
    pub payload: String,
    pub payload_bytes: usize,
    pub event_bytes: usize,
    pub mib: f64,
}

pub fn measure(
    options: &Options,
    collector: &LocalCollector,
    notes: &mut Vec<String>,
) -> Result<(Vec<ColdStart>, Vec<PeakRss>)> {
    let exe = options.bootstrap.clone();
    if !exe.is_file() {
        bail!(
            "no forwarder binary at {} to measure cold start with: build it (`cargo build \
             --release -p rds-forwarder`), pass --bootstrap, or --no-processes",
            exe.display()
        );
    }
    if cfg!(debug_assertions) {
        notes.push(
            "this is a debug build: build with --release for figures worth reading".to_owned(),
        );
    }
    let scratch =
        Scratch(std::env::temp_dir().join(format!("rds-forwarder-bench-{}", std::process::id())));
    let dir = &scratch.0;
    let packaged_dir = dir.join("packaged");
    let bare_dir = dir.join("bare");
    for d in [&packaged_dir, &bare_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    // As the Lambda zip holds it: `bootstrap` and the precompiled default beside it.
    let packaged = packaged_dir.join("bootstrap");
    let bare = bare_dir.join("bootstrap");
    for copy in [&packaged, &bare] {
        std::fs::copy(&exe, copy).with_context(|| format!("copying to {}", copy.display()))?;
    }
    // The packaged default runs without epoch checks; the same mapper from a file runs with
    // them (see `rds_forwarder::sandbox::Origin`), and so is precompiled for that, and pinned.
    let precompile = |checks| {
        rds_forwarder::sandbox::precompile(embedded::DEFAULT_MAPPER, None, checks)
            .map_err(|e| anyhow::anyhow!("precompiling the embedded mapper: {e:#}"))
    };
    std::fs::write(
        packaged_dir.join(embedded_cwasm_name()),
        precompile(EpochChecks::Off)?,
    )?;
    let wasm_file = dir.join("mapper.wasm");
    let cwasm_file = dir.join("mapper.cwasm");
    std::fs::write(&wasm_file, embedded::DEFAULT_MAPPER)?;
    let cwasm = precompile(EpochChecks::On)?;
    let cwasm_sha256 = rds_forwarder::source::sha256_hex(&cwasm);
    std::fs::write(&cwasm_file, cwasm)?;

    let control = std::fs::read(options.fixtures.join("events/awslogs-control-message.json"))
        .context("reading fixtures/events/awslogs-control-message.json")?;
    let env = collector.env();
    let runs = options.cold_runs.max(1);
    let mut rows = Vec::new();
    // The baseline is built with these tools.
    let hello = std::env::current_exe()
        .context("locating this executable")?
        .with_file_name("lambda-hello");
    if hello.exists() {
        let mut row = cold_start(
            "lambda_runtime hello (baseline)",
            &hello,
            &[],
            &control,
            runs,
        )?;
        row.baseline = true;
        rows.push(row);
    } else {
        notes.push(format!(
            "no lambda-hello beside this binary ({}): build it with `cargo build --release -p rds-forwarder-tools`",
            hello.display()
        ));
    }
    let file = |p: &Path| p.display().to_string();
    type Variant<'a> = (&'a str, &'a Path, Vec<(&'static str, String)>, bool);
    let variants: Vec<Variant> = vec![
        (
            "embedded + .cwasm beside bootstrap (as packaged)",
            &packaged,
            env.clone(),
            true,
        ),
        ("embedded, JIT (no .cwasm)", &bare, env.clone(), false),
        (
            "MAPPER_URI = file .wasm (JIT)",
            &bare,
            with(&env, "MAPPER_URI", file(&wasm_file)),
            false,
        ),
        (
            "MAPPER_URI = file .cwasm (pinned)",
            &bare,
            with(
                &with(&env, "MAPPER_URI", file(&cwasm_file)),
                "MAPPER_SHA256",
                cwasm_sha256,
            ),
            false,
        ),
    ];
    for (name, binary, vars, is_packaged) in &variants {
        let mut row = cold_start(name, binary, vars, &control, runs)?;
        row.packaged = *is_packaged;
        rows.push(row);
    }
    notes.push(
        "cold start: the forwarder answers a CloudWatch control message (no records, no \
         network); S3 variants: `cargo bench -p rds-forwarder --bench cold_start`"
            .to_owned(),
    );

    let mut rss = Vec::new();
    let sample = options.fixtures.join("logs/postgresql.log");
    let text = std::fs::read_to_string(&sample)
        .with_context(|| format!("reading {}", sample.display()))?;
    let entries = generate::sample_entries("postgresql", &text, generate::Mode::Message);
    for (name, size) in [
        ("postgresql, one CloudWatch batch", Size::CloudWatchBatch),
        (
            "postgresql, Lambda's 1 MiB async limit (stress)",
            Size::AsyncLimit {
                max_decompressed: rds_mapper::config::DEFAULT_MAX_DECOMPRESSED_BYTES,
            },
        ),
    ] {
        let g = generate::awslogs_event(
            "/aws/rds/instance/bench-db/postgresql",
            "bench-db",
            &entries,
            size,
            1_700_000_000_000,
        )
        .context("no postgresql entries")?;
        rss.push(PeakRss {
            payload: name.to_owned(),
            payload_bytes: g.payload_bytes,
            event_bytes: g.event.len(),
            mib: peak_rss(&packaged, &env, &g.event)?,
        });
    }
    Ok((rows, rss))
}

fn with(
    env: &[(&'static str, String)],
    key: &'static str,
    value: String,
) -> Vec<(&'static str, String)> {
    let mut v = env.to_vec();
    v.push((key, value));
    v
}

fn spawn(binary: &Path, api: &RuntimeApi, env: &[(&str, String)]) -> Result<Child> {
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "rds-forwarder-bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// Kills the child on every path out.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn cold_start(
    name: &str,
    binary: &Path,
    env: &[(&str, String)],
    event: &[u8],
    runs: usize,
) -> Result<ColdStart> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let api = RuntimeApi::start();
        let id = format!("cold-{i}");
        api.invoke(&id, event, Duration::from_secs(30));
        let started = Instant::now();
        let _child = Running(spawn(binary, &api, env)?);
        let outcome = api.outcome(&id, Duration::from_secs(30));
        let took = started.elapsed();
        if !matches!(outcome, Some(Outcome::Response(_))) {
            bail!("{name}: the first invocation was not answered: {outcome:?}");
        }
        times.push(took.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(ColdStart {
        variant: name.to_owned(),
        median_ms: times[times.len() / 2],
        min_ms: times[0],
        runs,
        baseline: false,
        packaged: false,
    })
}

/// The packaged function's peak RSS (VmHWM) after mapping `event` and delivering it to the
/// local collector, in MiB.
pub fn peak_rss(binary: &Path, env: &[(&str, String)], event: &[u8]) -> Result<f64> {
    let api = RuntimeApi::start();
    api.invoke("big", event, Duration::from_secs(120));
    let child = Running(spawn(binary, &api, env)?);
    let outcome = api.outcome("big", Duration::from_secs(120));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))
        .context("reading the function's /proc status (peak RSS needs Linux)")?;
    drop(child);
    if !matches!(outcome, Some(Outcome::Response(_))) {
        bail!("the large payload was not mapped and delivered: {outcome:?}");
    }
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .context("no VmHWM in /proc status")
}

pub fn cold_start_table(rows: &[ColdStart]) -> String {
    let base = rows.iter().find(|r| r.baseline).map(|r| r.median_ms);
    let mut out = format!(
        "\nCold start: process start -> first invocation answered (median of {} runs)\n",
        rows.first().map_or(0, |r| r.runs)
    );
    out.push_str(&format!(
        "{:<52} {:>10} {:>8} {:>10}\n",
        "variant", "median ms", "min ms", "vs hello"
    ));
    for r in rows {
        let vs = match base {
            Some(b) if !r.baseline => format!("{:+.1}", r.median_ms - b),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<52} {:>10.1} {:>8.1} {:>10}\n",
            r.variant, r.median_ms, r.min_ms, vs
        ));
    }
    out
}

pub fn rss_table(rows: &[PeakRss]) -> String {
    let mut out =
        String::from("\nPeak RSS of the packaged function, mapping and delivering one payload\n");
    out.push_str(&format!(
        "{:<52} {:>14} {:>12} {:>9}\n",
        "payload", "decompressed", "event", "MiB"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<52} {:>11.1} MB {:>9.2} MB {:>9.1}\n",
            r.payload,
            r.payload_bytes as f64 / 1e6,
            r.event_bytes as f64 / 1e6,
            r.mib
        ));
    }
    out
}
