//! The sans-IO WhaTap codec of the host, included by path so it is fuzzed without building
//! wasmtime under the sanitizer.

pub mod whatap;
