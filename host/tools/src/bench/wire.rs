//! Bytes on the wire, and what they cost in time: for each payload, the WhaTap data frames of
//! one delivery against the gzip'd payload CloudWatch sent and the messages' own size; every
//! compression level and ZipPack size tried, with its encoding time; what the CloudWatch event
//! id would add to every record; and the JSON-lines printer of `invoke --sink stdout`.
//!
//! The records are those the embedded mapper sends the host (collected once per payload), so
//! the sweep measures the host's encoding alone. A frame of the default secure transport
//! (HIDE) is its pack plus a 22-byte header, which is how the sweep counts wire bytes; the
//! throughput table's +WhaTap column measures the same through a real sink and collector.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::Options;
use super::throughput::{Measure, Payloads, Row};
use rds_forwarder::sandbox::bindings::Invocation;
use rds_forwarder::sandbox::{Mapper, Sandbox, SandboxLimits};
use rds_forwarder::sink::stdout::write_json_lines;
use rds_forwarder::sink::{Batch, Memory, into_memory};
use rds_forwarder::whatap::encode::{AGENT_ZIP_BYTES, DEFAULT_ZIP_BYTES, zip_packs};
use rds_forwarder::whatap::frame::HEADER_LEN;
use rds_forwarder::whatap::gzip::{DEFAULT_LEVEL, Gzip};
use rds_forwarder::whatap::pack::Header;

/// The gzip levels tried: fastest, the agents' default and the smallest, and one between.
pub const LEVELS: [u32; 4] = [1, 4, DEFAULT_LEVEL, 9];
/// The ZipPack sizes tried: the agents' buffer, and larger ones up to a batch's size.
pub const ZIP_SIZES: [usize; 3] = [AGENT_ZIP_BYTES, 256 << 10, 1 << 20];

/// One compression setting over every payload.
#[derive(Debug, Clone)]
pub struct SweepCell {
    pub level: u32,
    pub zip_bytes: usize,
    /// Encoding time of every payload's records (the sum of the per-payload medians).
    pub encode_secs: f64,
    pub wire_bytes: u64,
    /// The highest wire / CloudWatch ratio of any payload, and that payload.
    pub worst: (f64, String),
}

impl SweepCell {
    pub fn is_default(&self) -> bool {
        self.level == DEFAULT_LEVEL && self.zip_bytes == DEFAULT_ZIP_BYTES
    }
}

/// What one payload's records cost beyond the default delivery.
#[derive(Debug, Clone)]
pub struct PayloadBytes {
    pub payload: String,
    /// The messages, one per line, gzip'd at the default level: what gzip of the text alone
    /// gives, for comparison.
    pub messages_gzip_bytes: usize,
    /// Wire bytes with the setting `cw_event_id=true` (every record carrying the 56-digit
    /// CloudWatch event id), at the default compression.
    pub with_event_id_bytes: u64,
    /// Wire bytes at the default compression, counted the sweep's way.
    pub default_bytes: u64,
    /// Writing the records as JSON lines (`invoke --sink stdout`), into memory.
    pub printer: Measure,
}

#[derive(Debug, Clone, Default)]
pub struct WireReport {
    pub sweep: Vec<SweepCell>,
    pub payloads: Vec<PayloadBytes>,
}

pub async fn measure(options: &Options, payloads: &Payloads, rows: &[Row]) -> Result<WireReport> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = rds_forwarder::cli::load_mapper_from(&sandbox, options.mapper.as_deref()).await?;
    let (sandbox, mapper) = (&sandbox, &*mapper);
    let invocation = &Invocation {
        request_id: "bench-wire".into(),
        function_name: "rds-forwarder-bench".into(),
        deadline_ms: i64::MAX,
        received_ms: 1_700_000_000_000,
        config: Vec::new(),
    };
    let per = options.per_cell / 4;
    let mut sweep: Vec<SweepCell> = LEVELS
        .iter()
        .flat_map(|&level| {
            ZIP_SIZES.iter().map(move |&zip_bytes| SweepCell {
                level,
                zip_bytes,
                encode_secs: 0.0,
                wire_bytes: 0,
                worst: (0.0, String::new()),
            })
        })
        .collect();
    let mut out = Vec::new();
    for (name, log_type, g) in payloads {
        if log_type == "rds-event" {
            continue;
        }
        let batches = collect(sandbox, mapper, &g.event, invocation)
            .await
            .with_context(|| format!("{name}: collecting the records"))?;
        for cell in &mut sweep {
            let (secs, bytes) = encode(&batches, cell.level, cell.zip_bytes, per)?;
            cell.encode_secs += secs;
            cell.wire_bytes += bytes;
            let ratio = bytes as f64 / g.data_bytes as f64;
            if ratio > cell.worst.0 {
                cell.worst = (ratio, name.clone());
            }
        }
        let with_ids = Invocation {
            config: vec![("cw_event_id".into(), "true".into())],
            ..invocation.clone()
        };
        let id_batches = collect(sandbox, mapper, &g.event, &with_ids)
            .await
            .with_context(|| format!("{name}: collecting the records with event ids"))?;
        let (_, with_event_id_bytes) = encode(
            &id_batches,
            DEFAULT_LEVEL,
            DEFAULT_ZIP_BYTES,
            Duration::ZERO,
        )?;
        let (_, default_bytes) =
            encode(&batches, DEFAULT_LEVEL, DEFAULT_ZIP_BYTES, Duration::ZERO)?;
        let printer = print(&batches, per)?;
        let row = rows.iter().find(|r| &r.payload == name);
        if let Some(row) = row
            && row.wire_bytes.abs_diff(default_bytes) > default_bytes / 50
        {
            bail!(
                "{name}: the sink put {} bytes on the wire, the sweep counts {default_bytes} \
                 for the same settings: one of them counts wrong",
                row.wire_bytes
            );
        }
        out.push(PayloadBytes {
            payload: name.clone(),
            messages_gzip_bytes: messages_gzip(&g.event)?,
            with_event_id_bytes,
            default_bytes,
            printer,
        });
    }
    Ok(WireReport {
        sweep,
        payloads: out,
    })
}

/// The batches the mapper sends for `event`, as the host receives them.
async fn collect(
    sandbox: &Sandbox,
    mapper: &Mapper,
    event: &[u8],
    invocation: &Invocation,
) -> Result<Vec<Batch>> {
    let ran = sandbox
        .run(
            mapper,
            event,
            invocation,
            Box::new(Memory::default()),
            Duration::from_secs(60),
        )
        .await;
    ran.result?;
    let memory = into_memory(ran.sink).context("the memory sink came back as another")?;
    Ok(memory.batches)
}

/// Encodes every batch into ZipPacks at `level` and `zip_bytes` (once, then again until
/// `budget` is spent, at least three times): the median time and the wire bytes.
fn encode(batches: &[Batch], level: u32, zip_bytes: usize, budget: Duration) -> Result<(f64, u64)> {
    let header = Header {
        pcode: 424242,
        oid: 1,
        okind: 0,
        onode: 0,
        time: 1_700_000_000_000,
    };
    let mut gzip = Gzip::with_level(level);
    let mut once = || -> Result<u64> {
        let mut bytes = 0u64;
        for batch in batches {
            let packs = batch.with_ref(|b| zip_packs(b, header, &mut gzip, zip_bytes))?;
            bytes += packs
                .iter()
                .map(|p| (p.bytes.len() + HEADER_LEN) as u64)
                .sum::<u64>();
        }
        Ok(bytes)
    };
    let bytes = once()?;
    if budget.is_zero() {
        return Ok((0.0, bytes));
    }
    let mut runs = Vec::new();
    let started = Instant::now();
    while runs.len() < 3 || started.elapsed() < budget {
        let t = Instant::now();
        once()?;
        runs.push(t.elapsed());
    }
    Ok((Measure { runs }.secs(), bytes))
}

/// Times writing every record as a JSON line into memory (the terminal or pipe left out).
fn print(batches: &[Batch], budget: Duration) -> Result<Measure> {
    let mut out = Vec::with_capacity(8 << 20);
    let mut runs = Vec::new();
    let started = Instant::now();
    while runs.len() < 3 || started.elapsed() < budget {
        out.clear();
        let t = Instant::now();
        for batch in batches {
            batch.with_ref(|b| write_json_lines(b, &mut out))?;
        }
        runs.push(t.elapsed());
    }
    std::hint::black_box(&out);
    Ok(Measure { runs })
}

/// The payload's messages, one per line, gzip'd at the default level.
fn messages_gzip(event: &[u8]) -> Result<usize> {
    let v: Value = serde_json::from_slice(event)?;
    let data = v["awslogs"]["data"]
        .as_str()
        .context("not an awslogs event")?;
    let json = rds_mapper::awslogs::decode(data, 64 << 20)?;
    let payload = rds_mapper::awslogs::parse(&json)?;
    let mut text = Vec::new();
    for e in &payload.log_events {
        text.extend_from_slice(e.message().as_bytes());
        text.push(b'\n');
    }
    Ok(Gzip::with_level(DEFAULT_LEVEL).compress(&text)?.len())
}

/// Sums over the log payloads (RDS events left out: they are not CloudWatch bytes).
pub struct Totals {
    pub data: u64,
    pub messages: u64,
    pub wire: u64,
}

pub fn totals(rows: &[Row]) -> Totals {
    let logs = rows.iter().filter(|r| r.log_type != "rds-event");
    let mut t = Totals {
        data: 0,
        messages: 0,
        wire: 0,
    };
    for r in logs {
        t.data += r.data_bytes as u64;
        t.messages += r.message_bytes as u64;
        t.wire += r.wire_bytes;
    }
    t
}

impl WireReport {
    pub fn to_json(&self) -> Value {
        json!({
            "sweep": self.sweep.iter().map(|c| json!({
                "level": c.level, "zip_bytes": c.zip_bytes, "encode_ms": c.encode_secs * 1000.0,
                "wire_bytes": c.wire_bytes, "worst_wire_over_cloudwatch": c.worst.0,
                "worst_payload": c.worst.1, "default": c.is_default(),
            })).collect::<Vec<_>>(),
            "payloads": self.payloads.iter().map(|p| json!({
                "payload": p.payload, "messages_gzip_bytes": p.messages_gzip_bytes,
                "wire_bytes_with_cw_event_id": p.with_event_id_bytes,
                "wire_bytes_default": p.default_bytes,
                "printer_ms": p.printer.secs() * 1000.0,
            })).collect::<Vec<_>>(),
        })
    }

    /// The per-payload bytes table and the sweep table.
    pub fn table(&self, rows: &[Row]) -> String {
        let mut out = String::from(
            "\nBytes on the wire: one delivery of each payload (WhaTap data frames) against what CloudWatch sent\n",
        );
        out.push_str(&format!(
            "{:<34} {:>9} {:>9} {:>9} {:>9} | {:>7} {:>7} {:>7} | {:>10} | {:>8} {:>8}\n",
            "payload",
            "messages",
            "msgs.gz",
            "CW gzip",
            "wire",
            "w/CW",
            "w/msgs",
            "w/msgs.gz",
            "+event id",
            "print ms",
            "p/map"
        ));
        for p in &self.payloads {
            let Some(r) = rows.iter().find(|r| r.payload == p.payload) else {
                continue;
            };
            let wire = r.wire_bytes as f64;
            out.push_str(&format!(
                "{:<34} {:>9} {:>9} {:>9} {:>9} | {:>7.2} {:>7.3} {:>9.2} | {:>+9.1}% | {:>8.1} {:>8.2}\n",
                p.payload,
                r.message_bytes,
                p.messages_gzip_bytes,
                r.data_bytes,
                r.wire_bytes,
                wire / r.data_bytes as f64,
                wire / r.message_bytes as f64,
                wire / p.messages_gzip_bytes as f64,
                (p.with_event_id_bytes as f64 / p.default_bytes as f64 - 1.0) * 100.0,
                p.printer.secs() * 1000.0,
                p.printer.secs() / r.wasm.secs(),
            ));
        }
        let t = totals(rows);
        if t.data > 0 {
            out.push_str(&format!(
                "{:<34} {:>9} {:>9} {:>9} {:>9} | {:>7.2} {:>7.3}\n",
                "all log payloads",
                t.messages,
                "",
                t.data,
                t.wire,
                t.wire as f64 / t.data as f64,
                t.wire as f64 / t.messages as f64
            ));
        }
        out.push_str(
            "messages: the log messages' bytes. msgs.gz: the messages alone, one per line, gzip'd at level 6. CW gzip: the gzip'd \
             payload CloudWatch sent (awslogs.data). wire: the data frames of one delivery at the default settings (level 6, 1 MiB \
             ZipPacks), through the sink. +event id: what the setting cw_event_id=true adds. print ms: `invoke --sink stdout`'s JSON \
             lines of the same records, into memory; p/map: that time over the wasm mapping's.\n",
        );
        out.push_str("\nCompression settings, all log payloads: host encoding time (records to ZipPacks) and wire bytes\n");
        out.push_str(&format!(
            "{:>5} {:>9} | {:>10} {:>8} | {:>11} {:>7} {:>7} | worst payload\n",
            "level", "ZipPack", "encode ms", "ms/MB", "wire bytes", "w/CW", "worst"
        ));
        let messages_mb = t.messages as f64 / 1e6;
        for c in &self.sweep {
            out.push_str(&format!(
                "{:>5} {:>8}K | {:>10.1} {:>8.2} | {:>11} {:>7.3} {:>7.3} | {}{}\n",
                c.level,
                c.zip_bytes >> 10,
                c.encode_secs * 1000.0,
                c.encode_secs * 1000.0 / messages_mb,
                c.wire_bytes,
                c.wire_bytes as f64 / t.data.max(1) as f64,
                c.worst.0,
                c.worst.1,
                if c.is_default() { "   (default)" } else { "" },
            ));
        }
        out.push_str(
            "ms/MB: encoding time per MB of messages. w/CW: wire bytes over CloudWatch's gzip'd bytes; worst: the highest of any payload.\n",
        );
        out
    }
}
