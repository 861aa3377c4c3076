//! `rds-forwarder bench` (run by `rds-forwarder-tools bench`): every performance figure in one
//! run and one table. It covers
//! throughput per log type (decode-only floor, the mapping library native, the same mapping in
//! the wasm sandbox, and in the sandbox with WhaTap encoding and delivery to a local collector),
//! cold start (process start to first answer, against a minimal `lambda_runtime` binary), and
//! peak RSS on the largest payloads.
//!
//! Payloads come from `rds_mapper::generate` over `fixtures/logs`. The goals are reported,
//! never asserted: timings belong here, not in tests.
//!
//! # Layout
//! - [`throughput`]: the in-process measurements.
//! - [`process`]: cold start and peak RSS, by running the forwarder's binary in Lambda mode
//!   against the Runtime API emulator ([`crate::runtime_api`]).
//! - here: options, the local collector, the report.

pub mod process;
pub mod throughput;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use rds_forwarder::collector::{Collector, CountReport};
use rds_forwarder::whatap::config::WhatapConfig;
use rds_forwarder::whatap::license::License;

/// The project key the bench's sender and collector share: a made-up test key.
const BENCH_LICENSE_KEY: &[u8; 16] = b"bench-key-012345";
const BENCH_PCODE: i64 = 424242;

/// What to measure, and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository's `fixtures/` directory.
    pub fixtures: PathBuf,
    /// Time spent measuring each cell of the throughput table.
    pub per_cell: Duration,
    /// Process starts per cold-start variant (the median is reported).
    pub cold_runs: usize,
    /// Only payloads whose name contains this.
    pub only: Option<String>,
    /// Skip cold start and peak RSS (they start processes).
    pub skip_processes: bool,
    /// The mapper whose throughput is measured; the embedded default when `None`.
    pub mapper: Option<PathBuf>,
    /// The forwarder binary started for cold start and peak RSS.
    pub bootstrap: PathBuf,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub throughput: Vec<throughput::Row>,
    pub cold_start: Vec<process::ColdStart>,
    pub peak_rss: Vec<process::PeakRss>,
    /// Why a section is missing or partial (e.g. no `lambda-hello` beside this binary).
    pub notes: Vec<String>,
}

pub async fn run(options: &Options) -> Result<Report> {
    let mut notes = Vec::new();
    let collector = LocalCollector::start()?;
    let throughput = throughput::measure(options, &collector).await?;
    let (cold_start, peak_rss) = if options.skip_processes {
        (Vec::new(), Vec::new())
    } else {
        process::measure(options, &collector, &mut notes)?
    };
    let problems = collector.report.problems.lock().map(|p| p.clone());
    if let Ok(problems) = problems
        && !problems.is_empty()
    {
        anyhow::bail!("the local collector saw problems: {}", problems.join("; "));
    }
    Ok(Report {
        throughput,
        cold_start,
        peak_rss,
        notes,
    })
}

/// A WhaTap collector emulator on 127.0.0.1 in a thread of its own (as a real collector is
/// another machine), counting what it decodes.
pub struct LocalCollector {
    pub addr: SocketAddr,
    pub report: Arc<CountReport>,
    license: String,
}

impl LocalCollector {
    pub fn start() -> Result<LocalCollector> {
        let license = License::build(BENCH_PCODE, BENCH_LICENSE_KEY);
        let parsed = License::parse(&license).context("the bench license")?;
        let report = Arc::new(CountReport::default());
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the collector")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let served = Arc::clone(&report);
        std::thread::Builder::new()
            .name("bench-collector".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let Ok(rt) = rt else { return };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    Collector::new(parsed, Default::default())
                        .serve(listener, served)
                        .await;
                });
            })?;
        Ok(LocalCollector {
            addr,
            report,
            license,
        })
    }

    /// The `WHATAP_*` settings that point a sender at this collector.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WHATAP_HOST", self.addr.ip().to_string()),
            ("WHATAP_PORT", self.addr.port().to_string()),
            ("WHATAP_LICENSE", self.license.clone()),
        ]
    }

    pub fn sink_config(&self) -> Result<WhatapConfig> {
        let env = self.env();
        Ok(WhatapConfig::from_lookup(
            |k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()),
            "rds-forwarder-bench",
        )?)
    }

    pub fn received(&self) -> u64 {
        self.report
            .records
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// MiB/s of `bytes` done in `secs`.
fn mib_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

impl Report {
    /// The goals of issue 7, each with what this run measured.
    pub fn goals(&self) -> Vec<(String, String, bool)> {
        let mut goals = Vec::new();
        // The throughput goals are about CloudWatch payloads; the single RDS event row shows the
        // per-invocation cost instead.
        let logs: Vec<&throughput::Row> = self
            .throughput
            .iter()
            .filter(|r| r.log_type != "rds-event")
            .collect();
        if !logs.is_empty() {
            let worst_ratio = logs
                .iter()
                .map(|r| r.wasm_over_native())
                .fold(f64::INFINITY, f64::min);
            // What decoding alone costs in the sandbox, against the native floor: what both
            // goals below must carry before any mapping.
            let (low, high) = logs
                .iter()
                .map(|r| r.wasm_floor_vs_floor())
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
                    (lo.min(x), hi.max(x))
                });
            let decoding = format!("decoding alone in wasm takes {low:.1}-{high:.1}x the floor");
            goals.push((
                "wasm / native throughput >= 0.8 on every log type".to_owned(),
                format!("lowest {worst_ratio:.2} ({decoding})"),
                worst_ratio >= 0.8,
            ));
            let worst_floor = logs.iter().map(|r| r.wasm_vs_floor()).fold(0.0, f64::max);
            goals.push((
                "full wasm pipeline within 3x of decode-only".to_owned(),
                format!("worst {worst_floor:.1}x ({decoding})"),
                worst_floor <= 3.0,
            ));
            let ms_per_mb = |m: &throughput::Measure, r: &throughput::Row| {
                m.secs() * 1000.0 * 1e6 / r.payload_bytes as f64
            };
            let slowest = logs
                .iter()
                .map(|r| ms_per_mb(&r.wasm, r))
                .fold(0.0, f64::max);
            let slowest_delivered = logs
                .iter()
                .map(|r| ms_per_mb(&r.wasm_whatap, r))
                .fold(0.0, f64::max);
            goals.push((
                "whole pipeline faster than the seed's decode-only Go (22-36 ms per MB)".to_owned(),
                format!(
                    "slowest {slowest:.1} ms per MB mapped in wasm; {slowest_delivered:.1} ms \
                     with WhaTap encoding and confirmed delivery"
                ),
                slowest < 22.0,
            ));
        }
        let hello = self.cold_start.iter().find(|c| c.baseline);
        let packaged = self.cold_start.iter().find(|c| c.packaged);
        if let (Some(h), Some(p)) = (hello, packaged) {
            let over = p.median_ms - h.median_ms;
            goals.push((
                "cold start, embedded default, <= hello + 7 ms, no JIT".to_owned(),
                format!("hello + {over:.1} ms"),
                over <= 7.0,
            ));
        }
        if let Some(max) = self.peak_rss.iter().map(|r| r.mib).reduce(f64::max) {
            goals.push((
                "peak RSS <= 64 MiB on the largest payload".to_owned(),
                format!("{max:.1} MiB"),
                max <= 64.0,
            ));
        }
        goals
    }

    pub fn to_json(&self) -> Value {
        json!({
            "throughput": self.throughput.iter().map(throughput::Row::to_json).collect::<Vec<_>>(),
            "cold_start": self.cold_start.iter().map(|c| json!({
                "variant": c.variant, "median_ms": c.median_ms, "min_ms": c.min_ms, "runs": c.runs,
            })).collect::<Vec<_>>(),
            "peak_rss": self.peak_rss.iter().map(|r| json!({
                "payload": r.payload, "payload_bytes": r.payload_bytes, "event_bytes": r.event_bytes, "mib": r.mib,
            })).collect::<Vec<_>>(),
            "goals": self.goals().into_iter().map(|(goal, measured, met)| json!({
                "goal": goal, "measured": measured, "met": met,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }

    /// The report as the tables `bench` prints.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        if !self.throughput.is_empty() {
            out.push_str(&throughput::table(&self.throughput));
        }
        if !self.cold_start.is_empty() {
            out.push_str(&process::cold_start_table(&self.cold_start));
        }
        if !self.peak_rss.is_empty() {
            out.push_str(&process::rss_table(&self.peak_rss));
        }
        out.push_str("\nGoals\n");
        for (goal, measured, met) in self.goals() {
            let mark = if met { "met" } else { "NOT met" };
            out.push_str(&format!("  {mark:<8} {goal}: {measured}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }
}
