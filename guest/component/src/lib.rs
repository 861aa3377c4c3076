//! The default mapper component: the `rds-mapper` library behind the `whatap:rds-mapper`
//! contract. The WIT ⇄ library glue is `wrapper.rs`, shared with custom mappers; all logic is
//! in the library.
//!
//! Build: `cargo build -p rds-mapper-component --target wasm32-wasip2 --profile guest`
//! (host/build.rs does this to embed it).
#![cfg(target_family = "wasm")]

wit_bindgen::generate!({
    world: "rds-mapper",
    path: "../../wit",
    // A packed batch is lowered from the guest's own buffers, not copied again (see wrapper.rs).
    ownership: Borrowing { duplicate_if_necessary: false },
});

const MAPPER_NAME: &str = rds_mapper::MAPPER_NAME;
const MAPPER_VERSION: &str = rds_mapper::MAPPER_VERSION;

/// The default mapper changes nothing between parsing and delivery.
fn new_hook() -> rds_mapper::Unchanged {
    rds_mapper::Unchanged
}

include!("wrapper.rs");
