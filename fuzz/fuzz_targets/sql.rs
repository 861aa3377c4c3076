#![no_main]
//! SQL insight and `sql-literals` on any text, in every dialect: an insight or none, a
//! redaction or a reason, never a panic; a redaction is stable when applied again.
use libfuzzer_sys::fuzz_target;
use rds_mapper::sql::{Dialect, insight, redact::literals};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for d in [Dialect::MySql, Dialect::Postgres, Dialect::SqlServer, Dialect::Oracle] {
        if let Some(i) = insight(&text, d) {
            assert_eq!(i.digest.as_str().len(), 16);
        }
        if let Ok(redacted) = literals(&text, d) {
            assert_eq!(literals(&redacted, d).as_deref(), Ok(redacted.as_str()));
        }
    }
});
