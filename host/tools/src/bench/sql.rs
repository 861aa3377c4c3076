//! What SQL insight costs: every payload whose entries carry statements, mapped with the
//! setting `sql_insight` on (the default), on with `sql_memo=false` (every statement
//! fingerprinted anew: the cost when no statement text repeats) and off, natively and in the
//! sandbox. The settings run in turn, so a slow moment of the machine falls on all three.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::throughput::{Measure, Payloads};
use super::{Options, mib_per_s};
use rds_forwarder::sandbox::bindings::Invocation;
use rds_forwarder::sandbox::{Sandbox, SandboxLimits};
use rds_forwarder::sink::Count;

/// The receive time every run passes (as in [`super::throughput`]).
const NOW_MS: i64 = 1_700_000_000_000;

/// One payload's row.
#[derive(Debug, Clone)]
pub struct Row {
    pub payload: String,
    pub payload_bytes: usize,
    pub records: usize,
    /// Records that got a `query_digest`.
    pub statements: usize,
    pub native_on: Measure,
    pub native_fresh: Measure,
    pub native_off: Measure,
    pub wasm_on: Measure,
    pub wasm_fresh: Measure,
    pub wasm_off: Measure,
}

impl Row {
    /// How much longer the mapping takes with SQL insight, natively (0.10 = 10 %).
    pub fn native_cost(&self) -> f64 {
        self.native_on.secs() / self.native_off.secs() - 1.0
    }

    /// The same in the sandbox: what a Lambda pays.
    pub fn wasm_cost(&self) -> f64 {
        self.wasm_on.secs() / self.wasm_off.secs() - 1.0
    }

    /// The cost in the sandbox with every statement fingerprinted anew (`sql_memo=false`).
    pub fn wasm_fresh_cost(&self) -> f64 {
        self.wasm_fresh.secs() / self.wasm_off.secs() - 1.0
    }

    pub fn native_fresh_cost(&self) -> f64 {
        self.native_fresh.secs() / self.native_off.secs() - 1.0
    }

    pub fn to_json(&self) -> Value {
        let cell = |m: &Measure| json!({"median_ms": m.secs() * 1000.0, "mib_per_s": mib_per_s(self.payload_bytes, m.secs()), "runs": m.runs.len()});
        json!({
            "payload": self.payload, "records": self.records, "statements": self.statements,
            "native_on": cell(&self.native_on), "native_fresh": cell(&self.native_fresh),
            "native_off": cell(&self.native_off),
            "wasm_on": cell(&self.wasm_on), "wasm_fresh": cell(&self.wasm_fresh),
            "wasm_off": cell(&self.wasm_off),
            "native_cost": self.native_cost(), "native_fresh_cost": self.native_fresh_cost(),
            "wasm_cost": self.wasm_cost(), "wasm_fresh_cost": self.wasm_fresh_cost(),
        })
    }
}

/// The three settings measured, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    On,
    Fresh,
    Off,
}

const SETTINGS: [Setting; 3] = [Setting::On, Setting::Fresh, Setting::Off];

fn setting(s: Setting) -> Vec<(String, String)> {
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    match s {
        Setting::On => vec![pair("sql_insight", "true")],
        Setting::Fresh => vec![pair("sql_insight", "true"), pair("sql_memo", "false")],
        Setting::Off => vec![pair("sql_insight", "false")],
    }
}

/// The statements of a payload's records (those given a digest), and its records.
fn statements(event: &[u8]) -> Result<(usize, usize)> {
    let invocation = rds_mapper::Invocation {
        received_ms: NOW_MS,
        ..Default::default()
    };
    let mut out = rds_mapper::Collect::default();
    rds_mapper::map_event(event, &invocation, &mut out)
        .map_err(|e| anyhow::anyhow!("native mapping: {e}"))?;
    let with = out
        .records
        .iter()
        .filter(|r| r.field("query_digest").is_some())
        .count();
    Ok((with, out.records.len()))
}

pub async fn measure(options: &Options, payloads: &Payloads) -> Result<Vec<Row>> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = rds_forwarder::cli::load_mapper_from(&sandbox, options.mapper.as_deref()).await?;
    let budget = Duration::from_secs(60);
    let mut rows = Vec::new();
    for (name, _, g) in payloads {
        let event = &g.event;
        let (with, records) = statements(event).with_context(|| name.clone())?;
        if with == 0 {
            continue;
        }
        let native = |s: Setting| -> Result<()> {
            let invocation = rds_mapper::Invocation {
                received_ms: NOW_MS,
                config: setting(s),
                ..Default::default()
            };
            let mut out = rds_mapper::Count::default();
            rds_mapper::map_event(event, &invocation, &mut out)
                .map_err(|e| anyhow::anyhow!("{name}: native mapping: {e}"))?;
            if out.records != records {
                bail!(
                    "{name}: {} records with {s:?}, {records} with it on",
                    out.records
                );
            }
            Ok(())
        };
        let [native_on, native_fresh, native_off] = in_turn(options.per_cell, |s| {
            let t = Instant::now();
            native(s)?;
            Ok(t.elapsed())
        })?;
        let mut wasm_runs: [Vec<Duration>; 3] = Default::default();
        let started = Instant::now();
        let mut round = 0;
        while round < 4 || started.elapsed() < options.per_cell * 3 {
            for (k, s) in SETTINGS.into_iter().enumerate() {
                let invocation = Invocation {
                    request_id: "bench".into(),
                    function_name: "rds-forwarder-bench".into(),
                    deadline_ms: i64::MAX,
                    received_ms: NOW_MS,
                    config: setting(s),
                };
                let t = Instant::now();
                let ran = sandbox
                    .run(
                        &mapper,
                        event,
                        &invocation,
                        Box::new(Count::default()),
                        budget,
                    )
                    .await;
                let elapsed = t.elapsed();
                let summary = ran
                    .result
                    .with_context(|| format!("{name}: wasm mapping, {s:?}"))?;
                if summary.records as usize != records {
                    bail!(
                        "{name}: wasm mapped {} records, native {records}",
                        summary.records
                    );
                }
                // The first round is a warm-up.
                if round > 0 {
                    wasm_runs[k].push(elapsed);
                }
            }
            round += 1;
        }
        let [wasm_on, wasm_fresh, wasm_off] = wasm_runs.map(|runs| Measure { runs });
        rows.push(Row {
            payload: name.clone(),
            payload_bytes: g.payload_bytes,
            records,
            statements: with,
            native_on,
            native_fresh,
            native_off,
            wasm_on,
            wasm_fresh,
            wasm_off,
        });
    }
    Ok(rows)
}

/// Runs `f` with each setting in turn until `per_cell` is spent on each (each at least three
/// times after a warm-up round).
fn in_turn(
    per_cell: Duration,
    mut f: impl FnMut(Setting) -> Result<Duration>,
) -> Result<[Measure; 3]> {
    for s in SETTINGS {
        f(s)?;
    }
    let mut runs: [Vec<Duration>; 3] = Default::default();
    let started = Instant::now();
    while runs[0].len() < 3 || started.elapsed() < per_cell * 3 {
        for (k, s) in SETTINGS.into_iter().enumerate() {
            runs[k].push(f(s)?);
        }
    }
    Ok(runs.map(|runs| Measure { runs }))
}

/// The table `bench` prints.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "\nSQL insight: the mapping with sql_insight on (fingerprint, digest, command, tables, trace \
         context of every statement; repeated statements from the invocation's memo), on with \
         sql_memo=false (every statement fingerprinted anew: no statement repeats), and off, in \
         turn. MiB/s; cost = how much longer than off\n\n\
         | payload | records | with a statement | native on | native fresh | native off | native cost (fresh) | wasm on | wasm fresh | wasm off | wasm cost (fresh) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let rate = |m: &Measure| mib_per_s(r.payload_bytes, m.secs());
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:+.1} % ({:+.1} %) | {:.1} | {:.1} | {:.1} | {:+.1} % ({:+.1} %) |\n",
            r.payload,
            r.records,
            r.statements,
            rate(&r.native_on),
            rate(&r.native_fresh),
            rate(&r.native_off),
            r.native_cost() * 100.0,
            r.native_fresh_cost() * 100.0,
            rate(&r.wasm_on),
            rate(&r.wasm_fresh),
            rate(&r.wasm_off),
            r.wasm_cost() * 100.0,
            r.wasm_fresh_cost() * 100.0,
        ));
    }
    out
}
