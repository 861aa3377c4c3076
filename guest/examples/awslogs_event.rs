//! Wraps a decoded CloudWatch Logs payload (JSON) into the Lambda event CloudWatch delivers:
//! `{"awslogs":{"data":"<base64(gzip(json))>"}}`.
//!
//! Run: `cargo run -p rds-mapper --example awslogs_event -- PAYLOAD.json > EVENT.json`

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: awslogs_event PAYLOAD.json");
        return ExitCode::from(2);
    };
    let payload = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::from(1);
        }
    };
    // Re-serialize compactly, as CloudWatch sends it.
    let compact = match serde_json::from_slice::<serde_json::Value>(&payload) {
        Ok(v) => v.to_string(),
        Err(e) => {
            eprintln!("error: {path}: not JSON: {e}");
            return ExitCode::from(1);
        }
    };
    let data = rds_mapper::awslogs::encode(compact.as_bytes());
    println!("{}", serde_json::json!({ "awslogs": { "data": data } }));
    ExitCode::SUCCESS
}
