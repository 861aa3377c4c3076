//! A mapper built against `whatap:rds-mapper@2.0.0`, which a 1.x host must refuse by name.
#![cfg(target_family = "wasm")]

wit_bindgen::generate!({ world: "rds-mapper", path: "wit" });

use exports::whatap::rds_mapper::mapper::Guest;
use whatap::rds_mapper::types::{Invocation, MapError, MapperInfo, Summary};

struct Component;

impl Guest for Component {
    fn describe() -> MapperInfo {
        MapperInfo { name: "future-mapper".into(), version: "9.0.0".into(), contract: "2.0.0".into() }
    }

    fn map_event(_event: Vec<u8>, _context: Invocation) -> Result<Summary, MapError> {
        Ok(Summary { event_kind: "future".into(), records: 0, batches: 0, skipped: vec![], split: 0 })
    }
}

export!(Component);
