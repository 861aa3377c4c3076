//! Host bindings generated from `wit/mapper.wit`. Async on both sides: the WASI p2 linker and
//! the sink must run inside tokio (the sync WASI linker panics inside a tokio runtime).

wasmtime::component::bindgen!({
    world: "rds-mapper",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use whatap::rds_mapper::types::{
    ErrorKind, FieldValue, Invocation, Level, LogRecord, MapError, MapperInfo, Skipped, Summary,
};
