//! The canned events every new mapper, and every new mapping config, must map before it serves
//! (`fixtures/canary`, compiled in): the dry run that keeps a broken upload from replacing a
//! working mapper.

use std::time::Duration;

use crate::sandbox::{Mapper, Sandbox};
use crate::source::SourceError;

/// One canned event of `fixtures/canary`, by name.
macro_rules! canary {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../fixtures/canary/", $name, ".json")),
        )
    };
}

/// The events a new mapper, or a mapper with new rules, must map before it serves: an awslogs
/// event of each RDS log type (Enhanced Monitoring's included) and an RDS event (`fixtures/canary`, compiled in). To the host
/// they are opaque bytes.
pub const CANARY_EVENTS: &[(&str, &[u8])] = &[
    canary!("awslogs-mysql-error"),
    canary!("awslogs-mysql-slowquery"),
    canary!("awslogs-mysql-general"),
    canary!("awslogs-mysql-audit"),
    canary!("awslogs-postgresql"),
    canary!("awslogs-oracle-alert"),
    canary!("awslogs-oracle-listener"),
    canary!("awslogs-sqlserver-agent"),
    canary!("awslogs-rds-proxy"),
    canary!("awslogs-db2-diag"),
    canary!("awslogs-rdsosmetrics"),
    canary!("rds-db-instance-event.failover"),
];

/// The time budget of each canned event in a dry run.
const DRY_RUN_BUDGET: Duration = Duration::from_secs(5);

/// Maps every canned event with `mapper` and `config` into memory, sending nothing; the first
/// failure (an error, a trap, a timeout) is the refusal.
pub async fn dry_run(
    sandbox: &Sandbox,
    mapper: &Mapper,
    config: &[(String, String)],
) -> Result<(), SourceError> {
    for (event, bytes) in CANARY_EVENTS {
        let invocation = crate::sandbox::bindings::Invocation {
            request_id: format!("dry-run-{event}"),
            function_name: String::new(),
            deadline_ms: i64::MAX,
            received_ms: 0,
            config: config.to_vec(),
        };
        let ran = sandbox
            .run(
                mapper,
                bytes,
                &invocation,
                Box::new(crate::sink::Memory::default()),
                DRY_RUN_BUDGET,
            )
            .await;
        if let Err(error) = ran.result {
            return Err(SourceError::DryRun { event, error });
        }
    }
    Ok(())
}
