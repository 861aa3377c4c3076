//! What a forwarded terabyte costs, from this run's own measurements: compute (the CPU time
//! measured on one core, at Lambda's arm64 price for the memory that buys one vCPU), requests
//! (one invocation per CloudWatch batch of the measured size) and data transfer (the measured
//! wire bytes at the transfer prices), beside the same for the decode-only Go baseline.
//!
//! "A terabyte forwarded" is 10^12 bytes of log messages, the text CloudWatch delivered. The
//! prices are AWS's public list prices (us-east-1), kept here as constants so the table says
//! what it assumed.

use serde_json::{Value, json};

use super::peer::Peers;
use super::throughput::Row;
use super::wire::{WireReport, totals};

/// Lambda arm64 compute, $ per GB-second.
pub const ARM64_PER_GB_S: f64 = 0.000_013_333_4;
/// Lambda gives one vCPU at 1,769 MB.
pub const GB_PER_VCPU: f64 = 1.769;
/// Lambda requests, $ each ($0.20 per million).
pub const PER_REQUEST: f64 = 0.20 / 1e6;
/// Data transfer out to the internet, $ per GB.
pub const INTERNET_PER_GB: f64 = 0.09;
/// To a public address in the same region, $ per GB.
pub const SAME_REGION_PER_GB: f64 = 0.01;
/// A NAT gateway's processing, $ per GB, on top of the transfer to the internet.
pub const NAT_PER_GB: f64 = 0.045;

const TB: f64 = 1e12;

/// One line of the cost table, $ per TB of messages.
#[derive(Debug, Clone)]
pub struct Cost {
    pub who: String,
    /// MB of messages per second on one vCPU.
    pub mb_per_s: f64,
    pub compute: f64,
    pub requests: f64,
    /// Wire bytes per message byte; `None` for what sends nothing.
    pub wire_ratio: Option<f64>,
}

impl Cost {
    fn transfer(&self, per_gb: f64) -> Option<f64> {
        self.wire_ratio.map(|r| r * TB / 1e9 * per_gb)
    }

    pub fn internet(&self) -> Option<f64> {
        self.transfer(INTERNET_PER_GB)
    }

    pub fn same_region(&self) -> Option<f64> {
        self.transfer(SAME_REGION_PER_GB)
    }

    pub fn nat(&self) -> Option<f64> {
        self.transfer(INTERNET_PER_GB + NAT_PER_GB)
    }

    pub fn total_internet(&self) -> f64 {
        self.compute + self.requests + self.internet().unwrap_or(0.0)
    }
}

fn compute_per_tb(bytes_per_s: f64) -> f64 {
    TB / bytes_per_s * GB_PER_VCPU * ARM64_PER_GB_S
}

/// The cost lines: the forwarder (warm, in process: the mapping in the sandbox plus the host's
/// encoding at the default settings, each measured on one thread, so CPU time even where the
/// compressor runs beside the mapper), the Go baseline (decode only, in process) when it ran,
/// and CloudWatch's own gzip'd bytes sent on as a reference.
pub fn model(rows: &[Row], wire: &WireReport, peers: Option<&Peers>) -> Vec<Cost> {
    let logs: Vec<&Row> = rows.iter().filter(|r| r.log_type != "rds-event").collect();
    if logs.is_empty() {
        return Vec::new();
    }
    let t = totals(rows);
    let messages = t.messages as f64;
    let per_invocation = messages / logs.len() as f64;
    let requests = TB / per_invocation * PER_REQUEST;
    let encode = wire
        .sweep
        .iter()
        .find(|c| c.is_default())
        .map_or(0.0, |c| c.encode_secs);
    let secs: f64 = logs.iter().map(|r| r.wasm.secs()).sum::<f64>() + encode;
    let mut out = vec![Cost {
        who: "rds-forwarder (decode, map, encode at the defaults)".into(),
        mb_per_s: messages / secs / 1e6,
        compute: compute_per_tb(messages / secs),
        requests,
        wire_ratio: Some(t.wire as f64 / messages),
    }];
    if let Some(peers) = peers {
        let go: Option<f64> = logs
            .iter()
            .map(|r| {
                peers
                    .rows
                    .iter()
                    .find(|p| p.payload == r.payload)
                    .and_then(|p| p.go_decode_secs)
            })
            .sum();
        if let Some(go) = go {
            out.push(Cost {
                who: "Go decode-only baseline (decodes, sends nothing)".into(),
                mb_per_s: messages / go / 1e6,
                compute: compute_per_tb(messages / go),
                requests,
                wire_ratio: None,
            });
        }
    }
    out.push(Cost {
        who: "reference: CloudWatch's gzip'd bytes, sent on as they came".into(),
        mb_per_s: f64::NAN,
        compute: 0.0,
        requests: 0.0,
        wire_ratio: Some(t.data as f64 / messages),
    });
    out
}

pub fn to_json(costs: &[Cost]) -> Value {
    json!({
        "basis": "US dollars per 10^12 bytes of log messages forwarded",
        "prices": {
            "arm64_per_gb_s": ARM64_PER_GB_S, "gb_per_vcpu": GB_PER_VCPU,
            "per_request": PER_REQUEST, "internet_per_gb": INTERNET_PER_GB,
            "same_region_per_gb": SAME_REGION_PER_GB, "nat_per_gb": NAT_PER_GB,
        },
        "rows": costs.iter().map(|c| json!({
            "who": c.who, "mb_per_s_per_vcpu": if c.mb_per_s.is_finite() { json!(c.mb_per_s) } else { Value::Null },
            "compute": c.compute, "requests": c.requests,
            "wire_bytes_per_message_byte": c.wire_ratio,
            "transfer_internet": c.internet(), "transfer_same_region": c.same_region(),
            "transfer_nat": c.nat(), "total_internet": c.total_internet(),
        })).collect::<Vec<_>>(),
    })
}

pub fn table(costs: &[Cost]) -> String {
    let mut out = String::from(
        "\nCost per TB of log messages forwarded, US$ (Lambda arm64, one vCPU; measured CPU time and wire bytes)\n",
    );
    out.push_str(&format!(
        "{:<58} {:>9} {:>8} {:>8} {:>6} | {:>9} {:>9} {:>9} | {:>9}\n",
        "", "MB/s/vCPU", "compute", "requests", "wire", "internet", "in-region", "via NAT", "total"
    ));
    let money = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.2}"));
    for c in costs {
        out.push_str(&format!(
            "{:<58} {:>9} {:>8.2} {:>8.2} {:>6} | {:>9} {:>9} {:>9} | {:>9}\n",
            c.who,
            if c.mb_per_s.is_finite() {
                format!("{:.1}", c.mb_per_s)
            } else {
                "-".into()
            },
            c.compute,
            c.requests,
            c.wire_ratio.map_or("-".into(), |r| format!("{r:.3}")),
            money(c.internet()),
            money(c.same_region()),
            money(c.nat()),
            format!("{:.2}", c.total_internet()),
        ));
    }
    out.push_str(&format!(
        "MB/s/vCPU: messages per second of CPU time (the forwarder: the wasm column plus the default setting's encoding). \
         compute: 10^12 / (bytes/s) x {GB_PER_VCPU} GB x ${ARM64_PER_GB_S}/GB-s. requests: one per CloudWatch batch of this run's size, \
         ${:.2} per million. wire: bytes on the wire per message byte. internet ${INTERNET_PER_GB}/GB, in-region (public address) \
         ${SAME_REGION_PER_GB}/GB, via NAT ${INTERNET_PER_GB}+${NAT_PER_GB}/GB. total: compute + requests + internet.\n",
        PER_REQUEST * 1e6
    ));
    out
}
