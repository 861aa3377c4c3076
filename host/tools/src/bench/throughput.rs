//! Throughput of one payload per log type, four ways in the same run: decode only (base64 +
//! gunzip + JSON parse, natively: the floor of any forwarder), the mapping library natively
//! (mapping and packing batches, the component's work without the sandbox),
//! the embedded mapper in the sandbox (a fresh store per event, as in Lambda), and the sandbox
//! with WhaTap encoding and delivery, confirmed, to a collector on 127.0.0.1.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{LocalCollector, Options, mib_per_s};
use rds_forwarder::sandbox::bindings::Invocation;
use rds_forwarder::sandbox::{Mapper, RunOutcome, Sandbox, SandboxLimits};
use rds_forwarder::sink::{Count, RecordSink};
use rds_forwarder::whatap::sink::WhatapSink;
use rds_mapper::generate::{self, Size};

/// The receive time every run passes.
const NOW_MS: i64 = 1_700_000_000_000;

/// Repeated runs of one thing; the median is what the table shows.
#[derive(Debug, Clone)]
pub struct Measure {
    pub runs: Vec<Duration>,
}

impl Measure {
    pub fn secs(&self) -> f64 {
        let mut v: Vec<f64> = self.runs.iter().map(Duration::as_secs_f64).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

/// One payload's row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub payload: String,
    pub log_type: String,
    /// CloudWatch events (1 for an RDS event).
    pub events: usize,
    /// Decompressed payload bytes: what MiB/s counts.
    pub payload_bytes: usize,
    /// The gzip'd payload CloudWatch sent (`awslogs.data` decoded); the event's JSON for an
    /// RDS event.
    pub data_bytes: usize,
    /// The log messages' own bytes.
    pub message_bytes: usize,
    /// Bytes of WhaTap data frames one delivery of the payload put on the wire.
    pub wire_bytes: u64,
    pub records: u32,
    /// The guest's peak linear memory mapping this payload.
    pub guest_peak_bytes: usize,
    pub decode_only: Measure,
    /// The same decoding in the sandbox: the embedded mapper with `decode_only`, which
    /// decodes the event and unescapes every message but maps nothing. The floor there.
    pub wasm_decode_only: Measure,
    pub native: Measure,
    pub wasm: Measure,
    pub wasm_whatap: Measure,
}

impl Row {
    pub fn wasm_over_native(&self) -> f64 {
        self.native.secs() / self.wasm.secs()
    }

    /// How many times the decode-only floor the full wasm pipeline takes.
    pub fn wasm_vs_floor(&self) -> f64 {
        self.wasm.secs() / self.decode_only.secs()
    }

    /// How many times the native floor decoding alone takes in the sandbox.
    pub fn wasm_floor_vs_floor(&self) -> f64 {
        self.wasm_decode_only.secs() / self.decode_only.secs()
    }

    fn rate(&self, m: &Measure) -> (f64, f64) {
        (
            mib_per_s(self.payload_bytes, m.secs()),
            self.records as f64 / m.secs(),
        )
    }

    pub fn to_json(&self) -> Value {
        let cell = |m: &Measure| {
            let (mib, rec) = self.rate(m);
            json!({"median_ms": m.secs() * 1000.0, "mib_per_s": mib, "records_per_s": rec, "runs": m.runs.len()})
        };
        json!({
            "payload": self.payload, "log_type": self.log_type, "events": self.events,
            "payload_bytes": self.payload_bytes, "records": self.records,
            "data_bytes": self.data_bytes, "message_bytes": self.message_bytes,
            "wire_bytes": self.wire_bytes,
            "guest_peak_bytes": self.guest_peak_bytes,
            "decode_only": cell(&self.decode_only), "wasm_decode_only": cell(&self.wasm_decode_only),
            "native": cell(&self.native),
            "wasm": cell(&self.wasm), "wasm_whatap": cell(&self.wasm_whatap),
            "wasm_over_native": self.wasm_over_native(), "wasm_vs_floor": self.wasm_vs_floor(),
            "wasm_floor_vs_floor": self.wasm_floor_vs_floor(),
        })
    }
}

/// Runs `f` once to warm up, then until `budget` is spent (at least three times).
async fn time<F, Fut>(budget: Duration, mut f: F) -> Result<(Measure, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u32>>,
{
    let records = f().await?;
    let mut runs = Vec::new();
    let started = Instant::now();
    while runs.len() < 3 || started.elapsed() < budget {
        let t = Instant::now();
        let n = f().await?;
        runs.push(t.elapsed());
        if n != records {
            bail!("one run gave {n} records, another {records}");
        }
    }
    Ok((Measure { runs }, records))
}

/// The payloads: one full CloudWatch batch per sample in `fixtures/logs` (and of each
/// Enhanced Monitoring sample), and one RDS event.
pub fn payloads(options: &Options) -> Result<Vec<(String, String, generate::Generated)>> {
    let logs = options.fixtures.join("logs");
    let read = |name: &str| {
        let p = logs.join(name);
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let manifest = generate::manifest(&read("MANIFEST.tsv")?)
        .map_err(|e| anyhow::anyhow!("fixtures/logs/MANIFEST.tsv: {e}"))?;
    let mut out = Vec::new();
    for sample in &manifest {
        if !wanted(options, sample.name()) {
            continue;
        }
        let entries = generate::sample_entries(&sample.log_type, &read(&sample.file)?, sample.mode);
        let group = format!("/aws/rds/instance/bench-db/{}", sample.log_type);
        let g =
            generate::awslogs_event(&group, "bench-db", &entries, Size::CloudWatchBatch, NOW_MS)
                .with_context(|| format!("{}: no entries", sample.file))?;
        out.push((sample.name().to_owned(), sample.log_type.clone(), g));
    }
    // Enhanced Monitoring: a batch of documents (one per event) of each real sample.
    for shape in ["mysql", "postgresql", "sqlserver", "aurora"] {
        let name = format!("rdsosmetrics-{shape}");
        if !wanted(options, &name) {
            continue;
        }
        let sample: Vec<Value> = read(&format!("{name}.log"))?
            .lines()
            .filter(|l| !l.starts_with("#%") && !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .with_context(|| format!("{name}.log: not JSON documents"))?;
        // One document per interval, its numbers moving as real ones do: copies of one
        // document would let CloudWatch's gzip shrink the batch some seventy times.
        let docs: Vec<String> = (0..400)
            .map(|k| interval(&sample[k % sample.len()], k).to_string())
            .collect();
        let g = generate::awslogs_event(
            rds_mapper::os_metrics::LOG_GROUP,
            "db-BENCH",
            &docs,
            Size::CloudWatchBatch,
            NOW_MS,
        )
        .with_context(|| format!("{name}.log: no documents"))?;
        out.push((name, rds_mapper::os_metrics::LOG_GROUP.to_owned(), g));
    }
    if wanted(options, "rds-event") {
        let p = options
            .fixtures
            .join("events/rds-db-instance-event.failover.json");
        let template: Value = serde_json::from_str(
            &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
        )?;
        let event = generate::rds_event(&template, 0, NOW_MS);
        out.push((
            "rds-event".to_owned(),
            "rds-event".to_owned(),
            generate::Generated {
                payload_bytes: event.len(),
                message_bytes: event.len(),
                data_bytes: event.len(),
                events: 1,
                event,
            },
        ));
    }
    Ok(out)
}

/// The `k`-th interval's document: `timestamp` five seconds per interval later, and every
/// number moved by up to ±10 % (integers stay integers), by a hash of `k` and its place.
fn interval(doc: &Value, k: usize) -> Value {
    fn walk(v: &Value, seed: u64) -> Value {
        let mix = |s: u64| {
            let mut z = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let factor = 0.9 + (mix(seed) % 2001) as f64 / 10_000.0;
        match v {
            Value::Number(n) if n.is_i64() => {
                json!((n.as_i64().unwrap_or(0) as f64 * factor).round() as i64)
            }
            Value::Number(n) => {
                json!(((n.as_f64().unwrap_or(0.0) * factor) * 100.0).round() / 100.0)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| walk(x, mix(seed ^ i as u64)))
                    .collect(),
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .enumerate()
                    .map(|(i, (key, x))| {
                        (key.clone(), walk(x, mix(seed.wrapping_add(i as u64 + 1))))
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut out = walk(doc, k as u64);
    let when = NOW_MS + k as i64 * 5_000;
    if let Some(obj) = out.as_object_mut() {
        obj.insert(
            "timestamp".into(),
            json!(rds_mapper::time::format_rfc3339_ms(when / 1000 * 1000).replace(".000Z", "Z")),
        );
    }
    out
}

fn wanted(options: &Options, name: &str) -> bool {
    options.only.as_deref().is_none_or(|o| name.contains(o))
}

/// The payloads [`payloads`] made, each with its log type.
pub type Payloads = [(String, String, generate::Generated)];

pub async fn measure(
    options: &Options,
    collector: &LocalCollector,
    payloads: &Payloads,
) -> Result<Vec<Row>> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = rds_forwarder::cli::load_mapper_from(&sandbox, options.mapper.as_deref()).await?;
    let invocation = Invocation {
        request_id: "bench".into(),
        function_name: "rds-forwarder-bench".into(),
        deadline_ms: i64::MAX,
        received_ms: NOW_MS,
        config: Vec::new(),
    };
    let decode_invocation = Invocation {
        config: vec![("decode_only".into(), "true".into())],
        ..invocation.clone()
    };
    let native_invocation = rds_mapper::Invocation {
        request_id: invocation.request_id.clone(),
        function_name: invocation.function_name.clone(),
        deadline_ms: invocation.deadline_ms,
        received_ms: invocation.received_ms,
        config: Vec::new(),
    };
    let budget = Duration::from_secs(60);
    // One WhaTap sink for all runs, as in a warm Lambda: its connection stays open.
    let whatap: RefCell<Option<Box<dyn RecordSink>>> =
        RefCell::new(Some(Box::new(WhatapSink::new(collector.sink_config()?))));
    let mut rows = Vec::new();
    for (name, log_type, g) in payloads {
        let (name, log_type) = (name.clone(), log_type.clone());
        let event = &g.event;
        let per = options.per_cell;
        let (decode_only, _) = time(per, || async {
            decode_only(event).with_context(|| format!("{name}: decode only"))
        })
        .await?;
        let (wasm_decode_only, _) = time(per, || async {
            let ran = counted(&sandbox, &mapper, event, &decode_invocation, budget).await;
            let summary = ran
                .result
                .with_context(|| format!("{name}: decoding only in wasm"))?;
            // It must have read every event, or it measured less than the floor does.
            let read: u32 = summary.skipped.iter().map(|s| s.count).sum();
            if read as usize != g.events {
                bail!(
                    "{name}: decoding only in wasm read {read} of {} events",
                    g.events
                );
            }
            Ok(read)
        })
        .await?;
        let (native, native_records) = time(per, || async {
            // Mapped and packed, as in the component; the batches are counted, not read.
            let mut out = rds_mapper::Count::default();
            let s = rds_mapper::map_event(event, &native_invocation, &mut out)
                .map_err(|e| anyhow::anyhow!("{name}: native mapping: {e}"))?;
            Ok(s.records)
        })
        .await?;
        let guest_peak = Cell::new(0usize);
        let (wasm, wasm_records) = time(per, || async {
            let ran = counted(&sandbox, &mapper, event, &invocation, budget).await;
            guest_peak.set(ran.guest_peak_bytes);
            Ok(ran
                .result
                .with_context(|| format!("{name}: wasm mapping"))?
                .records)
        })
        .await?;
        let before = collector.received();
        let delivered = Cell::new(0u64);
        let (wasm_whatap, whatap_records) = time(per, || async {
            let sink = whatap
                .borrow_mut()
                .take()
                .context("the WhaTap sink was lost")?;
            let ran = sandbox.run(&mapper, event, &invocation, sink, budget).await;
            *whatap.borrow_mut() = Some(ran.sink);
            let records = ran
                .result
                .with_context(|| format!("{name}: wasm mapping with WhaTap delivery"))?
                .records;
            delivered.set(delivered.get() + u64::from(records));
            Ok(records)
        })
        .await?;
        if native_records != wasm_records || wasm_records != whatap_records {
            bail!(
                "{name}: native mapped {native_records} records, wasm {wasm_records}, \
                 wasm with WhaTap {whatap_records}: the figures would not compare the same work"
            );
        }
        // Every delivery was confirmed (TIME_SYNC after the batch), so the count is exact.
        let decoded = collector.received() - before;
        if decoded != delivered.get() {
            bail!(
                "{name}: the collector decoded {decoded} records, {} were delivered",
                delivered.get()
            );
        }
        // One more delivery, for the bytes it puts on the wire.
        let sink = whatap
            .borrow_mut()
            .take()
            .context("the WhaTap sink was lost")?;
        let wire_before = sink.wire_bytes().unwrap_or(0);
        let ran = sandbox.run(&mapper, event, &invocation, sink, budget).await;
        let wire_bytes = ran.sink.wire_bytes().unwrap_or(0) - wire_before;
        *whatap.borrow_mut() = Some(ran.sink);
        ran.result
            .with_context(|| format!("{name}: wasm mapping with WhaTap delivery"))?;
        rows.push(Row {
            payload: name,
            log_type,
            events: g.events,
            payload_bytes: g.payload_bytes,
            data_bytes: g.data_bytes,
            message_bytes: g.message_bytes,
            wire_bytes,
            records: native_records,
            guest_peak_bytes: guest_peak.get(),
            decode_only,
            wasm_decode_only,
            native,
            wasm,
            wasm_whatap,
        });
    }
    if let Some(mut sink) = whatap.into_inner() {
        sink.close().await;
    }
    Ok(rows)
}

/// One event through the mapper in a fresh sandbox, its records read and counted by the host.
async fn counted(
    sandbox: &Sandbox,
    mapper: &Mapper,
    event: &[u8],
    invocation: &Invocation,
    budget: Duration,
) -> RunOutcome {
    sandbox
        .run(
            mapper,
            event,
            invocation,
            Box::new(Count::default()),
            budget,
        )
        .await
}

/// The floor: what any forwarder must do before it can look at a message.
fn decode_only(event: &[u8]) -> Result<u32> {
    let v: Value = serde_json::from_slice(event)?;
    let Some(data) = v["awslogs"]["data"].as_str() else {
        // An RDS event: parsing the JSON is all there is to decode.
        return Ok(1);
    };
    let json = rds_mapper::awslogs::decode(data, 64 << 20)?;
    let payload = rds_mapper::awslogs::parse(&json)?;
    // Every message unescaped, as a decoder into structs of strings does.
    let bytes: usize = payload.log_events.iter().map(|e| e.message().len()).sum();
    std::hint::black_box(bytes);
    Ok(payload.log_events.len() as u32)
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "\nThroughput: MiB/s of decompressed payload, records/s (median; one full CloudWatch batch per sample)\n",
    );
    out.push_str(&format!(
        "{:<34} {:>6} {:>6} {:>5} | {:>8} {:>8} | {:>8} {:>9} | {:>8} {:>9} | {:>6} | {:>8} {:>9} | {:>6}\n",
        "payload", "MiB", "recs", "guest", "floor", "w.floor", "native", "rec/s", "wasm", "rec/s", "w/n", "+WhaTap", "rec/s", "w÷floor"
    ));
    for r in rows {
        let (floor, _) = r.rate(&r.decode_only);
        let (wasm_floor, _) = r.rate(&r.wasm_decode_only);
        let (n, nr) = r.rate(&r.native);
        let (w, wr) = r.rate(&r.wasm);
        let (s, sr) = r.rate(&r.wasm_whatap);
        out.push_str(&format!(
            "{:<34} {:>6.2} {:>6} {:>5} | {:>8.0} {:>8.0} | {:>8.1} {:>9.0} | {:>8.1} {:>9.0} | {:>6.2} | {:>8.1} {:>9.0} | {:>5.1}x\n",
            r.payload,
            r.payload_bytes as f64 / (1 << 20) as f64,
            r.records,
            r.guest_peak_bytes >> 20,
            floor,
            wasm_floor,
            n,
            nr,
            w,
            wr,
            r.wasm_over_native(),
            s,
            sr,
            r.wasm_vs_floor()
        ));
    }
    out.push_str(
        "guest: the sandbox's peak memory, MiB. floor: base64 + gunzip + JSON parse, native. w.floor: the same decoding in the sandbox \
         (the embedded mapper with decode_only: every message read, nothing mapped). native: the mapping library compiled natively, mapping and packing as the component does. \
         wasm: the embedded mapper in a fresh sandbox per event, its records read in place by the host. +WhaTap: wasm, then encoded, sent \
         and confirmed to a collector on 127.0.0.1. w/n: wasm / native. w÷floor: wasm time / floor time.\n",
    );
    out
}
