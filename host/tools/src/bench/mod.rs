//! `rds-forwarder bench` (run by `rds-forwarder-tools bench`): every performance figure in one
//! run and one table. It covers
//! throughput per log type (decode-only floor, the mapping library native, the same mapping in
//! the wasm sandbox, and in the sandbox with WhaTap encoding and delivery to a local collector),
//! bytes on the wire against CloudWatch's (and every compression setting's time and bytes),
//! the decode-only Go baseline against the whole pipeline from process start, the cost of a
//! forwarded terabyte, cold start (process start to first answer, against a minimal
//! `lambda_runtime` binary), and peak RSS on the largest payloads.
//!
//! Payloads come from `rds_mapper::generate` over `fixtures/logs`. The goals are reported,
//! never asserted: timings belong here, not in tests.
//!
//! # Layout
//! - [`throughput`]: the in-process measurements.
//! - [`wire`]: bytes on the wire, compression settings, the JSON-lines printer.
//! - [`sql`]: what SQL insight costs, on, with no memo, and off, on every payload carrying SQL.
//! - [`peer`]: the Go baseline and `invoke`, each a process per payload.
//! - [`cost`]: dollars per forwarded terabyte, from the figures above.
//! - [`process`]: cold start and peak RSS, by running the forwarder's binary in Lambda mode
//!   against the Runtime API emulator ([`crate::runtime_api`]).
//! - here: options, the local collector, the report.

pub mod cost;
pub mod peer;
pub mod process;
pub mod sql;
pub mod throughput;
pub mod wire;

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
    pub wire: wire::WireReport,
    pub sql: Vec<sql::Row>,
    /// `None` with `--no-processes`.
    pub peers: Option<peer::Peers>,
    pub cold_start: Vec<process::ColdStart>,
    pub peak_rss: Vec<process::PeakRss>,
    /// Why a section is missing or partial (e.g. no `lambda-hello` beside this binary).
    pub notes: Vec<String>,
}

pub async fn run(options: &Options) -> Result<Report> {
    let mut notes = Vec::new();
    let collector = LocalCollector::start()?;
    let payloads = throughput::payloads(options)?;
    let throughput = throughput::measure(options, &collector, &payloads).await?;
    let wire = wire::measure(options, &payloads, &throughput).await?;
    let sql = sql::measure(options, &payloads).await?;
    let (peers, cold_start, peak_rss) = if options.skip_processes {
        (None, Vec::new(), Vec::new())
    } else {
        let peers = peer::measure(options, &collector, &payloads, &mut notes)?;
        let (cold, rss) = process::measure(options, &collector, &mut notes)?;
        (Some(peers), cold, rss)
    };
    let problems = collector.report.problems.lock().map(|p| p.clone());
    if let Ok(problems) = problems
        && !problems.is_empty()
    {
        anyhow::bail!("the local collector saw problems: {}", problems.join("; "));
    }
    Ok(Report {
        throughput,
        wire,
        sql,
        peers,
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

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// MiB/s of `bytes` done in `secs`.
fn mib_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

impl Report {
    /// The performance goals, each with what this run measured.
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
            let worst_wire = logs
                .iter()
                .map(|r| {
                    (
                        r.wire_bytes as f64 / r.data_bytes as f64,
                        r.payload.as_str(),
                    )
                })
                .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
            goals.push((
                "wire bytes <= 1.0x CloudWatch's gzip'd payload on every log type".to_owned(),
                format!("worst {:.2}x ({})", worst_wire.0, worst_wire.1),
                worst_wire.0 <= 1.0,
            ));
            let worst_print = self
                .wire
                .payloads
                .iter()
                .filter_map(|p| {
                    let r = logs.iter().find(|r| r.payload == p.payload)?;
                    Some(p.printer.secs() / r.wasm.secs())
                })
                .fold(0.0, f64::max);
            if !self.wire.payloads.is_empty() {
                goals.push((
                    "the JSON-lines printer adds <= 1x the mapping's own time".to_owned(),
                    format!("worst {worst_print:.2}x"),
                    worst_print <= 1.0,
                ));
            }
        }
        if let Some((worst, payload)) = self
            .sql
            .iter()
            .map(|r| (r.wasm_cost(), r.payload.as_str()))
            .reduce(|a, b| if b.0 > a.0 { b } else { a })
        {
            let fresh = self
                .sql
                .iter()
                .map(|r| r.wasm_fresh_cost())
                .fold(f64::MIN, f64::max);
            goals.push((
                "SQL insight costs <= 15 % of the mapping on every log type that carries SQL"
                    .to_owned(),
                format!(
                    "worst {:+.1} % ({payload}, in wasm; with no statement repeating, worst {:+.1} %)",
                    worst * 100.0,
                    fresh * 100.0
                ),
                worst <= 0.15,
            ));
        }
        if let Some(peers) = &self.peers {
            let ratios: Vec<(f64, &str)> = peers
                .rows
                .iter()
                .filter_map(|r| Some((r.ratio()?, r.payload.as_str())))
                .collect();
            if let Some(worst) = ratios
                .iter()
                .copied()
                .reduce(|a, b| if b.0 > a.0 { b } else { a })
            {
                goals.push((
                    "whole pipeline (invoke --sink whatap) <= 0.5x the Go decode-only baseline, from process start, every log type"
                        .to_owned(),
                    format!("worst {:.2}x ({})", worst.0, worst.1),
                    worst.0 <= 0.5,
                ));
            }
            let warm = peers.startup.warm.secs() * 1000.0;
            goals.push((
                "invoke with the embedded mapper starts in <= 50 ms after its first run".to_owned(),
                format!(
                    "{warm:.1} ms (first run {:.1} ms)",
                    peers.startup.first_secs * 1000.0
                ),
                warm <= 50.0,
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
            "wire": self.wire.to_json(),
            "sql": self.sql.iter().map(sql::Row::to_json).collect::<Vec<_>>(),
            "peers": self.peers.as_ref().map(peer::Peers::to_json),
            "cost": cost::to_json(&cost::model(&self.throughput, &self.wire, self.peers.as_ref())),
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
            out.push_str(&self.wire.table(&self.throughput));
        }
        if !self.sql.is_empty() {
            out.push_str(&sql::table(&self.sql));
        }
        if let Some(peers) = &self.peers {
            out.push_str(&peers.table());
        }
        let costs = cost::model(&self.throughput, &self.wire, self.peers.as_ref());
        if !costs.is_empty() {
            out.push_str(&cost::table(&costs));
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
