//! rds-forwarder: carries RDS / Aurora logs (CloudWatch Logs subscriptions) and RDS events
//! (EventBridge) into WhaTap. The mapping is a WebAssembly component (`guest/`); this host runs
//! it in a sandbox and owns every socket.
//!
//! # Layout
//! - [`sandbox`]: the wasmtime engine, loading and checking components, one sandboxed store per
//!   invocation.
//! - [`sink`]: where mapped records go (stdout, memory; the host side of `sink.send`).
//! - [`record_json`]: the JSON line shape of a record.
//! - [`embedded`]: the default mapper carried in the binary.
//! - [`whatap`]: the WhaTap agent protocol and the TCP sink.
//! - [`lambda`]: Lambda mode (Runtime API), with [`mapper_store`] for hot swap and [`s3`] to read the mapper.
//! - [`collector`]: a local WhaTap collector emulator (the far end for users and tests).
//! - [`cli`]: the command line (`invoke`, `describe`, …).
//!
//! The benchmark, the Lambda Runtime API emulator and the cold-start baseline are not part of
//! the product: they are `rds-forwarder-tools` (host/tools). The WhaTap protocol itself is
//! `whatap-protocol` (host/whatap).

pub mod aws;
pub mod backfill;
pub mod canary;
pub mod cli;
pub mod collector;
pub mod compile_cache;
pub mod embedded;
pub mod lambda;
pub mod mapper_store;
pub mod metrics;
pub mod partial_batch;
pub mod progress;
pub mod record_json;
pub mod replay;
pub mod rules_store;
pub mod s3;
pub mod sandbox;
pub mod secrets;
pub mod sink;
pub mod source;
pub mod subscribe;
pub mod whatap;
