//! Side by side with a peer, from process start: the decode-only Go baseline
//! (`host/tools/go-baseline`, what the original Go forwarder does to an event before it can
//! look at a message: `encoding/json`, base64, gzip, `encoding/json` into the CloudWatch
//! structs), built here with the Go toolchain when one is installed, against the whole
//! pipeline as a user runs it: `rds-forwarder invoke --sink whatap FILE` (decode, parse, map,
//! encode, send, confirmed by the local collector), each a process started per payload with a
//! warm compile cache. Also how long `invoke` takes to start with the embedded mapper, the
//! first time and after.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::throughput::{Measure, Payloads};
use super::{LocalCollector, Options, Scratch};
use rds_mapper::generate::Generated;

/// One payload, both ways.
#[derive(Debug, Clone)]
pub struct PeerRow {
    pub payload: String,
    /// The Go baseline's process, start to exit; `None` without a Go toolchain.
    pub go_process: Option<Measure>,
    /// The Go baseline's decode alone, in its process (median of repeated decodes).
    pub go_decode_secs: Option<f64>,
    /// `rds-forwarder invoke --sink whatap`, start to exit.
    pub invoke_whatap: Measure,
}

impl PeerRow {
    /// The whole pipeline's time over the Go baseline's, both from process start.
    pub fn ratio(&self) -> Option<f64> {
        self.go_process
            .as_ref()
            .map(|g| self.invoke_whatap.secs() / g.secs())
    }
}

/// `invoke` with the embedded mapper on a small event.
#[derive(Debug, Clone)]
pub struct Startup {
    /// With an empty compile cache: the JIT and writing the cache entry.
    pub first_secs: f64,
    /// Every later run.
    pub warm: Measure,
}

#[derive(Debug, Clone)]
pub struct Peers {
    pub rows: Vec<PeerRow>,
    pub startup: Startup,
    /// `go version`'s words, when a toolchain was found.
    pub go_version: Option<String>,
}

pub fn measure(
    options: &Options,
    collector: &LocalCollector,
    payloads: &Payloads,
    notes: &mut Vec<String>,
) -> Result<Peers> {
    let exe = &options.bootstrap;
    if !exe.is_file() {
        bail!(
            "no forwarder binary at {} to run `invoke` with: build it (`cargo build --release \
             -p rds-forwarder`), pass --bootstrap, or --no-processes",
            exe.display()
        );
    }
    let scratch = Scratch(
        std::env::temp_dir().join(format!("rds-forwarder-bench-peer-{}", std::process::id())),
    );
    let dir = &scratch.0;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cache = dir.join("compile-cache");
    let go = build_go(options, dir, notes)?;
    let runs = options.cold_runs.max(3);

    // Startup: a small event, the first run with nothing cached.
    let small = options.fixtures.join("events/awslogs-postgresql.json");
    let invoke_stdout = |file: &Path| {
        let mut cmd = Command::new(exe);
        cmd.arg("invoke")
            .arg(file)
            .env("RDS_FORWARDER_CACHE_DIR", &cache)
            .stdout(Stdio::null());
        cmd
    };
    let first_secs = timed(&mut invoke_stdout(&small), "invoke (first run)")?;
    let warm = repeat(runs, || timed(&mut invoke_stdout(&small), "invoke"))?;

    let mut rows = Vec::new();
    for (name, log_type, g) in payloads {
        if log_type == "rds-event" {
            continue;
        }
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, &g.event)?;
        let mut invoke = || {
            let mut cmd = Command::new(exe);
            cmd.args(["invoke", "--sink", "whatap"])
                .arg(&file)
                .env("RDS_FORWARDER_CACHE_DIR", &cache)
                .stdout(Stdio::null());
            for (k, v) in collector.env() {
                cmd.env(k, v);
            }
            timed(&mut cmd, &format!("{name}: invoke --sink whatap"))
        };
        invoke()?;
        let invoke_whatap = repeat(runs, &mut invoke)?;
        let (go_process, go_decode_secs) = match &go {
            Some(go) => {
                let decoded = go_decode(go, &file, g)?;
                let process = repeat(runs, || {
                    timed(
                        Command::new(go).arg(&file).stdout(Stdio::null()),
                        &format!("{name}: Go baseline"),
                    )
                })?;
                (Some(process), Some(decoded))
            }
            None => (None, None),
        };
        rows.push(PeerRow {
            payload: name.clone(),
            go_process,
            go_decode_secs,
            invoke_whatap,
        });
    }
    Ok(Peers {
        rows,
        startup: Startup { first_secs, warm },
        go_version: go.as_ref().and_then(|_| go_version()),
    })
}

/// Builds the Go baseline into `dir`, or says in a note why there is none.
fn build_go(options: &Options, dir: &Path, notes: &mut Vec<String>) -> Result<Option<PathBuf>> {
    let source = options
        .fixtures
        .parent()
        .unwrap_or(Path::new("."))
        .join("host/tools/go-baseline");
    if go_version().is_none() {
        notes.push(
            "no Go toolchain (`apt-get install golang-go`): the decode-only Go baseline was \
             skipped"
                .to_owned(),
        );
        return Ok(None);
    }
    let out = dir.join("cwdecode");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&source)
        // Never fetch a toolchain or a module: the baseline uses the standard library only.
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .status()
        .with_context(|| format!("running go build in {}", source.display()))?;
    if !status.success() {
        bail!("go build of {} failed: {status}", source.display());
    }
    Ok(Some(out))
}

fn go_version() -> Option<String> {
    let out = Command::new("go").arg("version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The Go baseline's in-process decode time of `file`, after checking it decoded every event.
fn go_decode(go: &Path, file: &Path, g: &Generated) -> Result<f64> {
    let out = Command::new(go)
        .args(["-repeat", "30"])
        .arg(file)
        .output()
        .context("running the Go baseline")?;
    if !out.status.success() {
        bail!(
            "the Go baseline failed on {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let line: Value = serde_json::from_slice(&out.stdout).context("the Go baseline's output")?;
    let events = line["events"].as_u64().unwrap_or(0) as usize;
    let bytes = line["message_bytes"].as_u64().unwrap_or(0) as usize;
    if events != g.events || bytes != g.message_bytes {
        bail!(
            "the Go baseline decoded {events} events and {bytes} message bytes of {}, not {} and {}",
            file.display(),
            g.events,
            g.message_bytes
        );
    }
    let ns = line["decode_ns_median"]
        .as_f64()
        .context("no decode_ns_median from the Go baseline")?;
    Ok(ns / 1e9)
}

/// Runs `cmd` to completion: its wall time, start to exit, in seconds.
fn timed(cmd: &mut Command, what: &str) -> Result<f64> {
    let started = Instant::now();
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("{what}: starting it"))?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(secs)
}

fn repeat(runs: usize, mut f: impl FnMut() -> Result<f64>) -> Result<Measure> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(std::time::Duration::from_secs_f64(f()?));
    }
    Ok(Measure { runs: times })
}

impl Peers {
    pub fn to_json(&self) -> Value {
        json!({
            "go_version": self.go_version,
            "invoke_startup": {
                "first_ms": self.startup.first_secs * 1000.0,
                "warm_median_ms": self.startup.warm.secs() * 1000.0,
            },
            "rows": self.rows.iter().map(|r| json!({
                "payload": r.payload,
                "go_process_ms": r.go_process.as_ref().map(|m| m.secs() * 1000.0),
                "go_decode_ms": r.go_decode_secs.map(|s| s * 1000.0),
                "invoke_whatap_ms": r.invoke_whatap.secs() * 1000.0,
                "invoke_over_go": r.ratio(),
            })).collect::<Vec<_>>(),
        })
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "\nFrom process start, per payload (median of {} runs): the Go decode-only baseline ({}) against \
             `rds-forwarder invoke --sink whatap`\n",
            self.rows.first().map_or(0, |r| r.invoke_whatap.runs.len()),
            self.go_version.as_deref().unwrap_or("no Go toolchain")
        );
        out.push_str(&format!(
            "{:<34} {:>10} {:>11} | {:>10} | {:>8}\n",
            "payload", "Go ms", "Go decode", "invoke ms", "inv/Go"
        ));
        let ms = |s: f64| format!("{:.1}", s * 1000.0);
        for r in &self.rows {
            out.push_str(&format!(
                "{:<34} {:>10} {:>11} | {:>10.1} | {:>8}\n",
                r.payload,
                r.go_process.as_ref().map_or("-".into(), |m| ms(m.secs())),
                r.go_decode_secs.map_or("-".into(), ms),
                r.invoke_whatap.secs() * 1000.0,
                r.ratio().map_or("-".into(), |x| format!("{x:.2}x")),
            ));
        }
        out.push_str(&format!(
            "Go ms: the baseline's process, start to exit; Go decode: its decode alone, in process. invoke ms: the forwarder's \
             process mapping the payload and delivering it to the local collector, confirmed.\n\
             `invoke` with the embedded mapper, a 3-event payload: {:.1} ms the first time (compiles and caches the mapper), \
             {:.1} ms after (median)\n",
            self.startup.first_secs * 1000.0,
            self.startup.warm.secs() * 1000.0
        ));
        out
    }
}
