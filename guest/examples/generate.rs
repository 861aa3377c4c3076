//! Writes realistic Lambda events built from the sample logs in `fixtures/logs` (see
//! `rds_mapper::generate`): one awslogs event per sample, and EventBridge RDS events made from
//! `fixtures/events/rds-*.json`.
//!
//! Run (from the repository root):
//! `cargo run --release -p rds-mapper --example generate -- OUT_DIR [--size cloudwatch|stress|EVENTS] [--rds-events N]`
//!
//! - `cloudwatch` (default): one full CloudWatch batch per sample (1 MiB of messages or
//!   10,000 events).
//! - `stress`: as large as Lambda's 1 MiB asynchronous event limit allows once compressed
//!   (and the mapper's 32 MiB decompressed limit).
//! - a number: that many CloudWatch events per sample.
//!
//! Prints one line per file: name, events, decompressed bytes, event bytes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rds_mapper::generate::{self, Size};

struct Args {
    out: PathBuf,
    size: Size,
    rds_events: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut size = Size::CloudWatchBatch;
    let mut rds_events = 100;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => {
                size = match args.next().as_deref() {
                    Some("cloudwatch") => Size::CloudWatchBatch,
                    Some("stress") => Size::AsyncLimit {
                        max_decompressed: rds_mapper::config::DEFAULT_MAX_DECOMPRESSED_BYTES,
                    },
                    Some(n) => Size::Events(n.parse().map_err(|_| {
                        format!("--size {n:?}: expected cloudwatch, stress or a number of events")
                    })?),
                    None => return Err("--size needs a value".into()),
                }
            }
            "--rds-events" => {
                rds_events = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--rds-events needs a number")?;
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => out = Some(PathBuf::from(other)),
        }
    }
    Ok(Args {
        out: out
            .ok_or("usage: generate OUT_DIR [--size cloudwatch|stress|EVENTS] [--rds-events N]")?,
        size,
        rds_events,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let manifest = generate::manifest(&read(&fixtures.join("logs/MANIFEST.tsv"))?)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    for sample in &manifest {
        let text = read(&fixtures.join("logs").join(&sample.file))?;
        let entries = generate::sample_entries(&sample.log_type, &text, sample.mode);
        let group = format!("/aws/rds/instance/bench-db/{}", sample.log_type);
        let Some(g) =
            generate::awslogs_event(&group, "bench-db", &entries, args.size, 1_700_000_000_000)
        else {
            return Err(format!("{}: no entries", sample.file));
        };
        write(&format!("{}.json", sample.name()), &g.event)?;
        println!(
            "{}\t{} events\t{} bytes decompressed\t{} bytes",
            sample.name(),
            g.events,
            g.payload_bytes,
            g.event.len()
        );
    }
    let mut templates = Vec::new();
    let dir = fixtures.join("events");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rds-") && n.ends_with(".json"))
        })
        .collect();
    names.sort();
    for p in names {
        let v: serde_json::Value = serde_json::from_str(&read(&p)?)
            .map_err(|e| format!("{}: not JSON: {e}", p.display()))?;
        templates.push(v);
    }
    if args.rds_events > 0 && !templates.is_empty() {
        let events_dir = args.out.join("rds-events");
        std::fs::create_dir_all(&events_dir)
            .map_err(|e| format!("{}: {e}", events_dir.display()))?;
        for i in 0..args.rds_events {
            let template = &templates[i % templates.len()];
            let event = generate::rds_event(template, i, 1_700_000_000_000);
            write(&format!("rds-events/{i:05}.json"), &event)?;
        }
        println!("rds-events/\t{} events", args.rds_events);
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
