//! `host/src/whatap`'s pure modules (no sockets, no wasmtime types).
#[path = "../../../host/src/whatap/codec.rs"]
pub mod codec;
#[path = "../../../host/src/whatap/cypher.rs"]
pub mod cypher;
#[path = "../../../host/src/whatap/frame.rs"]
pub mod frame;
#[path = "../../../host/src/whatap/handshake.rs"]
pub mod handshake;
#[path = "../../../host/src/whatap/hash.rs"]
pub mod hash;
#[path = "../../../host/src/whatap/license.rs"]
pub mod license;
#[path = "../../../host/src/whatap/pack.rs"]
pub mod pack;
#[path = "../../../host/src/whatap/value.rs"]
pub mod value;
