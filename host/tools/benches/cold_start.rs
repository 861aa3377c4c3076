//! Cold start with the mapper in S3: the variants `rds-forwarder bench` cannot measure without
//! a local S3 (moto), beside the hello baseline and the packaged function, with the same code
//! (`rds_forwarder_tools::bench::process`). `rds-forwarder bench` has every other variant and the peak
//! RSS.
//!
//! Run: `cargo build --release -p rds-forwarder && cargo bench -p rds-forwarder-tools --bench cold_start` (prints a table; needs
//! `pip install 'moto[server]'` for the S3 rows).

#[path = "../../tests/e2e/common/moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::process::Command;

use rds_forwarder_tools::bench::LocalCollector;
use rds_forwarder_tools::bench::process::{ColdStart, cold_start, cold_start_table};

const RUNS: usize = 15;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let hello = PathBuf::from(env!("CARGO_BIN_EXE_lambda-hello"));
    // The product's binary, from its own package, in the same target directory.
    let forwarder = hello.with_file_name("rds-forwarder");
    assert!(
        forwarder.is_file(),
        "no {}: build it first (`cargo build --release -p rds-forwarder`)",
        forwarder.display()
    );
    let control = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/events/awslogs-control-message.json"),
    )
    .expect("fixture");
    let collector = LocalCollector::start().expect("collector");

    // The embedded mapper precompiled, beside a copy of the binary (as in the Lambda zip).
    let dir = tempfile::tempdir().expect("tempdir");
    let packaged = dir.path().join("bootstrap");
    std::fs::copy(&forwarder, &packaged).expect("copy");
    let cwasm = dir
        .path()
        .join(rds_forwarder::mapper_store::embedded_cwasm_name());
    let out = Command::new(&forwarder)
        .args(["compile", "--output"])
        .arg(&cwasm)
        .output()
        .expect("compile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The bare binary must not find a .cwasm beside it.
    let bare_dir = tempfile::tempdir().expect("tempdir");
    let bare = bare_dir.path().join("bootstrap");
    std::fs::copy(&forwarder, &bare).expect("copy");

    let run = |name: &str, binary: &Path, env: &[(&str, String)]| -> ColdStart {
        cold_start(name, binary, env, &control, RUNS).expect("cold start")
    };
    let mut hello_row = run("lambda_runtime hello (baseline)", &hello, &[]);
    hello_row.baseline = true;
    let mut rows = vec![
        hello_row,
        run(
            "embedded + .cwasm beside bootstrap (as packaged)",
            &packaged,
            &collector.env(),
        ),
    ];
    let moto_available = Command::new("python3")
        .args(["-c", "import moto.server"])
        .status()
        .is_ok_and(|s| s.success());
    if moto_available {
        let moto = moto::Moto::start();
        let s3 = moto.client();
        s3.put(
            "bench",
            "mapper.wasm",
            rds_forwarder::embedded::DEFAULT_MAPPER,
            true,
        )
        .expect("upload");
        s3.put(
            "bench",
            "mapper.cwasm",
            &std::fs::read(&cwasm).expect("cwasm"),
            false,
        )
        .expect("upload");
        for (name, key) in [
            ("MAPPER_URI = s3 .wasm (JIT)", "mapper.wasm"),
            ("MAPPER_URI = s3 .cwasm", "mapper.cwasm"),
        ] {
            let mut env = moto.env();
            env.extend(collector.env());
            env.push(("MAPPER_URI", format!("s3://bench/{key}")));
            rows.push(run(name, &bare, &env));
        }
    } else {
        println!("(moto not installed: S3 variants skipped; pip install 'moto[server]')");
    }
    print!("{}", cold_start_table(&rows));
}
