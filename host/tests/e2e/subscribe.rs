//! `rds-forwarder subscribe` and the subscriber function's logic against a local AWS API
//! (moto): RDS groups, other groups, one with someone else's filter, one already full;
//! exactly the filters expected, twice in a row; a dry run that changes nothing; and a
//! CloudTrail `CreateLogGroup` event that subscribes the new group.

use rds_forwarder::aws::{AwsJsonClient, CLOUDWATCH_LOGS, KINESIS, Service};
use serde_json::{Value, json};

use crate::common::moto::Moto;

fn env(moto: &Moto) -> Vec<(&'static str, String)> {
    moto.aws_env()
}

fn client(env: &[(&'static str, String)], service: &'static Service) -> AwsJsonClient {
    crate::common::moto::aws_client(env, service)
}

fn stream(kinesis: &AwsJsonClient, name: &str) -> String {
    kinesis
        .call(
            "CreateStream",
            &json!({"StreamName": name, "ShardCount": 1}),
        )
        .expect("create stream");
    let d = kinesis
        .call("DescribeStream", &json!({"StreamName": name}))
        .expect("describe stream");
    d["StreamDescription"]["StreamARN"]
        .as_str()
        .expect("stream ARN")
        .to_owned()
}

/// Each group's filters as (name, destination), sorted.
fn filters(logs: &AwsJsonClient, group: &str) -> Vec<(String, String)> {
    let a = logs
        .call(
            "DescribeSubscriptionFilters",
            &json!({"logGroupName": group}),
        )
        .expect("filters");
    let mut f: Vec<(String, String)> = a["subscriptionFilters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["filterName"].as_str().unwrap().to_owned(),
                f["destinationArn"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    f.sort();
    f
}

fn subscribe(env: &[(&'static str, String)], args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut cmd = crate::common::forwarder_cmd();
    cmd.arg("subscribe").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("subscribe");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (
        out.status.code(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn outcome<'v>(lines: &'v [Value], group: &str) -> &'v str {
    lines
        .iter()
        .find(|l| l["log_group"] == group)
        .and_then(|l| l["outcome"].as_str())
        .unwrap_or_else(|| panic!("no line for {group}: {lines:?}"))
}

#[test]
fn subscribe_gives_exactly_the_expected_filters_twice_in_a_row() {
    let moto = Moto::start();
    let env = env(&moto);
    let logs = client(&env, &CLOUDWATCH_LOGS);
    let kinesis = client(&env, &KINESIS);
    let ours = stream(&kinesis, "rds-logs");
    let theirs = stream(&kinesis, "someone-else");
    let rds = [
        "/aws/rds/instance/db-1/error",
        "/aws/rds/instance/db-1/postgresql",
        "/aws/rds/cluster/aurora-1/audit",
        "/aws/rds/proxy/orders-proxy",
        "RDSOSMetrics",
    ];
    let foreign = "/aws/rds/instance/db-2/error";
    let full = "/aws/rds/instance/db-3/error";
    let other = "/aws/lambda/something";
    for g in rds.iter().chain([&foreign, &full, &other]) {
        logs.call("CreateLogGroup", &json!({"logGroupName": g}))
            .expect("create group");
    }
    let put = |group: &str, name: &str| {
        logs.call(
            "PutSubscriptionFilter",
            &json!({"logGroupName": group, "filterName": name, "filterPattern": "",
                    "destinationArn": theirs, "roleArn": "arn:aws:iam::123456789012:role/theirs"}),
        )
        .expect("their filter");
    };
    put(foreign, "theirs");
    put(full, "theirs-1");
    put(full, "theirs-2");
    let args = [
        "--destination-arn",
        &ours,
        "--role-arn",
        "arn:aws:iam::123456789012:role/cwl-to-kinesis",
    ];

    // A dry run says what it would do and does nothing.
    let (code, lines, _) = subscribe(&env, &[&args[..], &["--dry-run"]].concat());
    assert_eq!(outcome(&lines, rds[0]), "would-subscribe");
    assert_eq!(code, Some(1), "the full group is reported");
    assert!(filters(&logs, rds[0]).is_empty());

    let expect = |logs: &AwsJsonClient| {
        for g in rds {
            assert_eq!(
                filters(logs, g),
                [("rds-forwarder".into(), ours.clone())],
                "{g}"
            );
        }
        let mut both = vec![
            ("rds-forwarder".to_string(), ours.clone()),
            ("theirs".to_string(), theirs.clone()),
        ];
        both.sort();
        assert_eq!(filters(logs, foreign), both, "theirs is kept");
        assert_eq!(
            filters(logs, full),
            [
                ("theirs-1".to_string(), theirs.clone()),
                ("theirs-2".to_string(), theirs.clone())
            ],
            "a full group is not forced"
        );
        assert!(filters(logs, other).is_empty(), "not an RDS group");
    };
    let (code, lines, err) = subscribe(&env, &args);
    assert_eq!(code, Some(1), "{err}");
    for g in rds {
        assert_eq!(outcome(&lines, g), "subscribed", "{g}");
    }
    assert_eq!(outcome(&lines, foreign), "subscribed");
    assert_eq!(outcome(&lines, full), "full");
    assert!(lines.iter().all(|l| l["log_group"] != other));
    assert!(
        err.contains(&format!("error: {full}: already has CloudWatch's maximum of 2 subscription filters (theirs-1, theirs-2)")),
        "{err}"
    );
    expect(&logs);

    // Again: nothing changes.
    let (code, lines, _) = subscribe(&env, &args);
    assert_eq!(code, Some(1));
    for g in rds.iter().chain([&foreign]) {
        assert_eq!(outcome(&lines, g), "already-subscribed", "{g}");
    }
    expect(&logs);

    // Include and exclude.
    let (_, lines, _) = subscribe(
        &env,
        &[
            &args[..],
            &["--include", "/instance/", "--exclude", "postgresql"],
        ]
        .concat(),
    );
    let named: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["log_group"].as_str())
        .collect();
    assert_eq!(named, [rds[0], foreign, full]);
}

#[test]
fn a_new_log_group_is_subscribed_from_its_cloudtrail_event() {
    let moto = Moto::start();
    let env = env(&moto);
    let logs = client(&env, &CLOUDWATCH_LOGS);
    let ours = stream(&client(&env, &KINESIS), "rds-logs");
    let lookup = |k: &str| match k {
        "SUBSCRIBE_DESTINATION_ARN" => Some(ours.clone()),
        "SUBSCRIBE_ROLE_ARN" => Some("arn:aws:iam::123456789012:role/cwl".into()),
        _ => None,
    };
    let options = rds_forwarder::lambda::subscriber::options(lookup).unwrap();
    let group = "/aws/rds/instance/new-db/error";
    logs.call("CreateLogGroup", &json!({"logGroupName": group}))
        .unwrap();
    logs.call(
        "CreateLogGroup",
        &json!({"logGroupName": "/aws/rds/instance/older/error"}),
    )
    .unwrap();
    let event = |g: &str| {
        json!({"version": "0", "source": "aws.logs", "detail-type": "AWS API Call via CloudTrail",
               "detail": {"eventSource": "logs.amazonaws.com", "eventName": "CreateLogGroup",
                          "requestParameters": {"logGroupName": g}}})
    };
    let answer = rds_forwarder::lambda::subscriber::handle(&logs, &options, &event(group)).unwrap();
    assert_eq!(
        (answer["groups"].as_u64(), answer["subscribed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        filters(&logs, group),
        [("rds-forwarder".into(), ours.clone())]
    );
    assert!(
        filters(&logs, "/aws/rds/instance/older/error").is_empty(),
        "only the new group"
    );
    // A group that is not ours is left alone.
    logs.call("CreateLogGroup", &json!({"logGroupName": "/aws/lambda/f"}))
        .unwrap();
    let answer =
        rds_forwarder::lambda::subscriber::handle(&logs, &options, &event("/aws/lambda/f"))
            .unwrap();
    assert_eq!(answer["groups"], 0);
    // The schedule checks every group.
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let answer = rds_forwarder::lambda::subscriber::handle(&logs, &options, &scheduled).unwrap();
    assert_eq!(
        (answer["groups"].as_u64(), answer["subscribed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        filters(&logs, "/aws/rds/instance/older/error"),
        [("rds-forwarder".into(), ours.clone())]
    );
    // Without a destination the function refuses to start, naming the setting.
    let e = rds_forwarder::lambda::subscriber::options(|_| None).unwrap_err();
    assert!(e.contains("SUBSCRIBE_DESTINATION_ARN"), "{e}");
}

/// The bootstrap in `RDS_FORWARDER_MODE=subscriber`, as the settings stack runs it, against
/// the Runtime API emulator: a scheduled invocation subscribes the groups and answers what it
/// did; without a destination it does not start.
#[test]
fn the_subscriber_function_runs_from_the_same_bootstrap() {
    use rds_forwarder_tools::runtime_api::{Outcome, RuntimeApi};
    use std::time::Duration;

    let moto = Moto::start();
    let env = env(&moto);
    let logs = client(&env, &CLOUDWATCH_LOGS);
    let ours = stream(&client(&env, &KINESIS), "rds-logs");
    for g in [
        "/aws/rds/instance/a/error",
        "/aws/rds/proxy/p",
        "/aws/ecs/x",
    ] {
        logs.call("CreateLogGroup", &json!({"logGroupName": g}))
            .unwrap();
    }
    let api = RuntimeApi::start();
    let start = |extra: &[(&str, String)]| {
        let mut cmd = crate::common::forwarder_cmd();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "rds-forwarder-subscriber")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("RDS_FORWARDER_MODE", "subscriber")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(extra.iter().map(|(k, v)| (*k, v)))
        {
            cmd.env(k, v);
        }
        cmd.spawn().expect("the bootstrap")
    };
    let mut child = start(&[
        ("SUBSCRIBE_DESTINATION_ARN", ours.clone()),
        (
            "SUBSCRIBE_ROLE_ARN",
            "arn:aws:iam::123456789012:role/cwl".into(),
        ),
    ]);
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    api.invoke(
        "sched",
        scheduled.to_string().as_bytes(),
        Duration::from_secs(30),
    );
    let answer = match api.outcome("sched", Duration::from_secs(30)) {
        Some(Outcome::Response(v)) => v,
        other => panic!("expected a response, got {other:?}"),
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        (answer["groups"].as_u64(), answer["subscribed"].as_u64()),
        (Some(2), Some(2)),
        "{answer}"
    );
    assert_eq!(answer["not_subscribed"], json!([]));
    for g in ["/aws/rds/instance/a/error", "/aws/rds/proxy/p"] {
        assert_eq!(filters(&logs, g), [("rds-forwarder".into(), ours.clone())]);
    }
    assert!(filters(&logs, "/aws/ecs/x").is_empty());

    // No destination: it says so and exits.
    let out = start(&[]).wait_with_output().expect("the bootstrap");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SUBSCRIBE_DESTINATION_ARN is not set"),
        "{err}"
    );
}
