//! The default mapper, built from `guest/` by `build.rs` and carried inside the binary so the
//! forwarder works with no S3 and no files.

/// The default mapper component (`.wasm`).
pub static DEFAULT_MAPPER: &[u8] = include_bytes!(env!("RDS_DEFAULT_MAPPER_WASM"));

/// How the embedded mapper is named in logs and summaries.
pub const ORIGIN: &str = "embedded";
