//! The forwarder end to end, in one test binary: each of these links wasmtime, and one link
//! instead of seven is most of a clean build's test-linking time.
//!
//! - [`cli`]: the binary as users and other checks run it.
//! - [`mapping`]: every fixture event through the component and the native library.
//! - [`sandbox`]: what a mapper cannot do, and where it came from deciding how it runs.
//! - [`contract`]: the `sink` functions read as the WIT lays them out.
//! - [`custom_mappers`]: the example mappers, built and tested as a plugin author would.
//! - [`whatap`]: delivery to the collector emulator, and the fault matrix.
//! - [`lambda`]: Lambda mode against the Runtime API emulator, hot swap from a local S3.
//! - [`subscribe`]: `subscribe` and the subscriber function against a local AWS API (moto).
//! - [`operations`]: `replay` and `backfill` against moto and the collector emulator.

mod common;

mod cli;
mod contract;
mod custom_mappers;
mod lambda;
mod mapping;
mod operations;
mod sandbox;
mod subscribe;
mod whatap;
