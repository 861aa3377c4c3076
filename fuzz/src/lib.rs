//! What the fuzz targets exercise besides the mapping library: the WhaTap protocol crate, which
//! has no sockets and no wasmtime, so it is fuzzed without building either under the sanitizer.

pub use whatap_protocol as whatap;
