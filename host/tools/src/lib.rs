//! Tools around rds-forwarder that are not the product, so that the product's default build is
//! what ships:
//! - [`bench`]: every performance figure in one run (`rds-forwarder bench`, which hands off to
//!   this crate's `rds-forwarder-tools bench`).
//! - [`runtime_api`]: a Lambda Runtime API emulator on 127.0.0.1, which the benchmark's
//!   cold-start runs and the forwarder's Lambda-mode tests talk to.
//! - `lambda-hello` (a binary): the smallest `lambda_runtime` function, the cold-start
//!   baseline.

pub mod bench;
pub mod runtime_api;
