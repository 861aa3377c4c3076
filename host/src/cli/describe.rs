//! `describe`: the mapper's name, version, contract version, origin and time budget, as one
//! JSON line.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::{MapperArgs, load_mapper};
use crate::sandbox::{Sandbox, SandboxLimits};

pub(super) async fn describe(args: MapperArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    // Without --mapper, the default as Lambda loads it: the package's precompiled artifact
    // when one lies beside the executable (origin `packaged`), else the embedded component
    // (compiled once, then from the compile cache).
    let cache = crate::compile_cache::CompileCache::from_env();
    let mapper = match &args.mapper {
        None => crate::mapper_store::load_embedded_cached(&sandbox, cache.as_ref()).await?,
        Some(_) => load_mapper(&sandbox, &args).await?,
    };
    let line = json!({
        "name": mapper.info.name,
        "version": mapper.info.version,
        "contract": mapper.info.contract,
        "origin": mapper.origin.to_string(),
        "time_budget": mapper.has_time_budget(),
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}
