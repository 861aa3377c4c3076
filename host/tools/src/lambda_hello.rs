//! The smallest `lambda_runtime` function, built like the forwarder: the cold-start baseline
//! the benchmarks compare against (a Rust hello world is what Lambda's fastest runtimes are).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

fn main() -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lambda_runtime::run(service_fn(
        |event: LambdaEvent<Value>| async move {
            Ok::<Value, Error>(serde_json::json!({ "hello": event.context.request_id }))
        },
    )))
}
