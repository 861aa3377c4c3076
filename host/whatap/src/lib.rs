//! The WhaTap agent wire protocol (`whatap-protocol.md`), written from the spec, without I/O:
//! bytes in, bytes out, and the caller's clock. No sockets, no async runtime, no WebAssembly:
//! the sender in `rds-forwarder` owns the one socket and drives what this crate decides, and
//! the collector emulator and the fuzz targets use the same code.
//!
//! # Layout
//! - [`codec`]: primitive encodings; [`value`]: tag and field values; [`hash`]: HashStr, Hash64
//!   and the oid.
//! - [`license`]: the project access key → pcode and AES master key.
//! - [`pack`]: LogSinkPack and ZipPack, gzip'd by [`gzip`]; [`frame`]: stream framing;
//!   [`cypher`]: AES-128-ECB and HIDE.
//! - [`handshake`]: the KEY_RESET handshake and the data and TIME_SYNC frames, both ends.
//! - [`retry`]: a sender's delivery plan: which host next, when to retry, when to give up.

pub mod codec;
pub mod cypher;
pub mod frame;
pub mod gzip;
pub mod handshake;
pub mod hash;
pub mod license;
pub mod pack;
pub mod retry;
pub mod value;
