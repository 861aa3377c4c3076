//! A test mapper of contract 1.0.0 (its `wit/` is that version, frozen), so the tests also show
//! that a 1.1 host runs a 1.0 mapper. Without config it maps every event to one record
//! `mapped by test-mapper` (a visibly different mapper for hot-swap tests); config `mode`
//! makes it misbehave: `trap`, `loop`, `alloc`, or try what the sandbox forbids (`files`,
//! `env`, `socket`, `clock`) and report what happened in a record. Hostile to the host:
//! `swallow` sends twice, ignores refusals and claims success; `sleep` blocks on the WASI clock;
//! `alias-text` and `alias-tags` send records that all share one large string or tag list.
//! A `rules` setting (a mapping config) is refused: this mapper supports none.
#![cfg(target_family = "wasm")]

wit_bindgen::generate!({ world: "rds-mapper", path: "wit" });

use exports::whatap::rds_mapper::mapper::Guest;
use whatap::rds_mapper::sink;
use whatap::rds_mapper::types::{Invocation, LogRecord, MapError, MapperInfo, Summary};

struct Component;

fn record(content: String, time: i64) -> LogRecord {
    LogRecord {
        category: "#TEST".into(),
        time,
        tags: vec![("mapper".into(), "test-mapper".into())],
        fields: vec![],
        content,
        line: 0,
    }
}

impl Guest for Component {
    fn describe() -> MapperInfo {
        MapperInfo {
            name: "test-mapper".into(),
            version: "2.0.0-test".into(),
            contract: "1.0.0".into(),
        }
    }

    fn map_event(event: Vec<u8>, context: Invocation) -> Result<Summary, MapError> {
        // It supports no mapping config, and says so rather than ignore one.
        if context.config.iter().any(|(k, _)| k == "rules") {
            return Err(MapError {
                kind: whatap::rds_mapper::types::ErrorKind::Config,
                message: "test-mapper takes no mapping config (rules)".into(),
            });
        }
        let mode = context
            .config
            .iter()
            .find(|(k, _)| k == "mode")
            .map(|(_, v)| v.as_str())
            .unwrap_or("echo");
        let content = match mode {
            "swallow" => {
                let _ = sink::send(&[record("first".into(), context.received_ms)]);
                let _ = sink::send(&[record("second".into(), context.received_ms)]);
                return Ok(Summary {
                    event_kind: "test".into(),
                    records: 2,
                    batches: 2,
                    skipped: vec![],
                    split: 0,
                });
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                "slept".into()
            }
            "alias-text" => return send_aliased_text(context.received_ms),
            "alias-tags" => return send_aliased_tags(context.received_ms),
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
            "files" => format!(
                "files: {:?}",
                std::fs::read_dir("/")
                    .map(|d| d.count())
                    .map_err(|e| e.to_string())
            ),
            "env" => format!("env: {} variables", std::env::vars().count()),
            "socket" => format!(
                "socket: {:?}",
                std::net::TcpStream::connect("127.0.0.1:6600")
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            ),
            "clock" => format!(
                "clock: {:?}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
            ),
            _ => format!("mapped by test-mapper ({} bytes)", event.len()),
        };
        sink::send(&[record(content, context.received_ms)]).map_err(|message| MapError {
            kind: whatap::rds_mapper::types::ErrorKind::Delivery,
            message,
        })?;
        Ok(Summary {
            event_kind: "test".into(),
            records: 1,
            batches: 1,
            skipped: vec![],
            split: 0,
        })
    }
}

/// Sends 64 records that all point at one 1 MiB string: legal in the canonical ABI, and 64 MiB
/// of text for the host to read out of a memory of a few MiB (under wasmtime's own 128 MiB
/// bound on what one host call lifts, so the host's bound is what stops it). The records are
/// never dropped: they share their buffer.
fn send_aliased_text(time: i64) -> Result<Summary, MapError> {
    let big = "x".repeat(1 << 20);
    let records: Vec<LogRecord> = (0..64)
        .map(|_| {
            let mut r = record(String::new(), time);
            // SAFETY: never freed (ManuallyDrop below); only read, by the lowering, which
            // passes a string's pointer as it is.
            r.content =
                unsafe { String::from_raw_parts(big.as_ptr() as *mut u8, big.len(), big.len()) };
            r
        })
        .collect();
    let records = std::mem::ManuallyDrop::new(records);
    sink::send(&records[..]).map_err(|message| MapError {
        kind: whatap::rds_mapper::types::ErrorKind::Delivery,
        message,
    })?;
    Ok(Summary {
        event_kind: "test".into(),
        records: 64,
        batches: 1,
        skipped: vec![],
        split: 0,
    })
}

/// `log-record` as the canonical ABI lays it out in memory (48 bytes, 8-aligned).
#[repr(C)]
struct RawRecord {
    category: [u32; 2],
    time: i64,
    tags: [u32; 2],
    fields: [u32; 2],
    content: [u32; 2],
    line: i64,
}

#[link(wasm_import_module = "whatap:rds-mapper/sink@1.0.0")]
unsafe extern "C" {
    /// `sink.send`, called by hand: the generated binding copies each record's tag list,
    /// so records could not share one through it.
    #[link_name = "send"]
    fn raw_send(records: *const RawRecord, count: usize, ret: *mut u32);
}

/// Sends 256 records that all name one list of 4096 tags: 1 M tags for the host out of a
/// memory that holds 64 KiB of them.
fn send_aliased_tags(time: i64) -> Result<Summary, MapError> {
    let (k, v, category) = ("k", "v", "#TEST");
    let list: Vec<[u32; 4]> = (0..4096)
        .map(|_| [k.as_ptr() as u32, 1, v.as_ptr() as u32, 1])
        .collect();
    let records: Vec<RawRecord> = (0..256)
        .map(|_| RawRecord {
            category: [category.as_ptr() as u32, category.len() as u32],
            time,
            tags: [list.as_ptr() as u32, list.len() as u32],
            fields: [0, 0],
            content: [k.as_ptr() as u32, 1],
            line: 0,
        })
        .collect();
    let mut ret = [0u32; 3];
    // SAFETY: every pointer names live memory of this function; `ret` is the result's area.
    unsafe { raw_send(records.as_ptr(), records.len(), ret.as_mut_ptr()) };
    if ret[0] & 0xff != 0 {
        return Err(MapError {
            kind: whatap::rds_mapper::types::ErrorKind::Delivery,
            message: "refused".into(),
        });
    }
    Ok(Summary {
        event_kind: "test".into(),
        records: 256,
        batches: 1,
        skipped: vec![],
        split: 0,
    })
}

export!(Component);
