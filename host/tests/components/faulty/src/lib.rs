//! A test mapper of contract 1.0.0 (its `wit/` is that version, frozen), so the tests also show
//! that a 1.1 host runs a 1.0 mapper. Without config it maps every event to one record
//! `mapped by test-mapper` (a visibly different mapper for hot-swap tests); config `mode`
//! makes it misbehave: `trap`, `loop`, `alloc`, or try what the sandbox forbids (`files`,
//! `env`, `socket`, `clock`) and report what happened in a record.
#![cfg(target_family = "wasm")]

wit_bindgen::generate!({ world: "rds-mapper", path: "wit" });

use exports::whatap::rds_mapper::mapper::Guest;
use whatap::rds_mapper::sink;
use whatap::rds_mapper::types::{Invocation, LogRecord, MapError, MapperInfo, Summary};

struct Component;

fn record(content: String, time: i64) -> LogRecord {
    LogRecord { category: "#TEST".into(), time, tags: vec![("mapper".into(), "test-mapper".into())], fields: vec![], content, line: 0 }
}

impl Guest for Component {
    fn describe() -> MapperInfo {
        MapperInfo { name: "test-mapper".into(), version: "2.0.0-test".into(), contract: "1.0.0".into() }
    }

    fn map_event(event: Vec<u8>, context: Invocation) -> Result<Summary, MapError> {
        let mode = context.config.iter().find(|(k, _)| k == "mode").map(|(_, v)| v.as_str()).unwrap_or("echo");
        let content = match mode {
            "trap" => panic!("test-mapper was asked to trap"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = n.wrapping_add(std::hint::black_box(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                }
            }
            "files" => format!("files: {:?}", std::fs::read_dir("/").map(|d| d.count()).map_err(|e| e.to_string())),
            "env" => format!("env: {} variables", std::env::vars().count()),
            "socket" => format!("socket: {:?}", std::net::TcpStream::connect("127.0.0.1:6600").map(|_| ()).map_err(|e| e.to_string())),
            "clock" => format!("clock: {:?}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis())),
            _ => format!("mapped by test-mapper ({} bytes)", event.len()),
        };
        sink::send(&[record(content, context.received_ms)]).map_err(|message| MapError {
            kind: whatap::rds_mapper::types::ErrorKind::Delivery,
            message,
        })?;
        Ok(Summary { event_kind: "test".into(), records: 1, batches: 1, skipped: vec![], split: 0 })
    }
}

export!(Component);
