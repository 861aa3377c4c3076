//! The WhaTap agent protocol (whatap-protocol.md), written from the spec.
//!
//! # Layout
//! Sans-IO (bytes in, bytes out, no sockets, no clock):
//! - [`codec`]: primitive encodings; [`value`]: tag/field values; [`hash`]: HashStr and Hash64.
//! - [`license`]: project access key → pcode and AES master key.
//! - [`pack`]: LogSinkPack and ZipPack, gzip'd by [`gzip`]; [`frame`]: stream framing;
//!   [`cypher`]: AES-ECB and hide.
//! - [`handshake`]: the KEY_RESET handshake and data frames, both ends.
//! - [`encode`]: log records → ZipPacks within WhaTap's size limits.
//!
//! With I/O:
//! - [`connection`]: the only owner of a socket: connect, handshake, write, drain replies.
//! - [`sink`]: failover, retries and time budget behind the mapper's `sink.send`.
//! - [`config`]: the `WHATAP_*` environment.

pub mod codec;
pub mod config;
pub mod connection;
pub mod cypher;
pub mod encode;
pub mod frame;
pub mod gzip;
pub mod handshake;
pub mod hash;
pub mod license;
pub mod pack;
pub mod sink;
pub mod value;
