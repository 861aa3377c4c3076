//! WhaTap delivery: the protocol itself is the `whatap-protocol` crate (sans I/O, re-exported
//! here); this module adds what needs the world.
//!
//! # Layout
//! - [`encode`]: this host's records → ZipPacks within WhaTap's size limits.
//! - [`compressor`]: the thread that compresses ZipPacks while the mapper goes on.
//! - [`connection`]: the only owner of a socket: connect, handshake, write, drain replies.
//! - [`sink`]: the record sink behind the mapper's `sink.send`, doing what the protocol's
//!   delivery plan ([`retry`]) says: failover, retries, time budget.
//! - [`config`]: the `WHATAP_*` environment.

pub use whatap_protocol::{
    codec, cypher, frame, gzip, handshake, hash, license, pack, retry, value,
};

pub mod compressor;
pub mod config;
pub mod connection;
pub mod encode;
pub mod sink;
