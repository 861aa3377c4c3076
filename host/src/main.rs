//! The `rds-forwarder` binary: all logic lives in the library; see `cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    rds_forwarder::cli::main()
}
