//! The CloudFormation templates as data: the parameter set, the runtime and architecture, one
//! function with conditional reserved concurrency, least-privilege IAM (no `*` resource), the
//! on-failure destination, scoped invoke permissions; and N log groups → N subscription
//! filters through `Fn::ForEach`. (`cfn-lint`, run by .ci/run, checks them against AWS's
//! schemas.)

use std::path::Path;

use serde_norway::Value;

fn template(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    serde_norway::from_str(&std::fs::read_to_string(&path).expect("template"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn at<'v>(v: &'v Value, path: &[&str]) -> &'v Value {
    path.iter().fold(v, |v, k| {
        v.get(*k).unwrap_or_else(|| panic!("no {k} in {path:?}"))
    })
}

/// `!Tag value` as (tag, value).
fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string(), &t.value)),
        _ => None,
    }
}

/// The forwarding function's environment variables in install.yaml.
fn function_env(t: &Value) -> &Value {
    at(
        t,
        &[
            "Resources",
            "Function",
            "Properties",
            "Environment",
            "Variables",
        ],
    )
}

fn resources_of_type<'v>(t: &'v Value, kind: &str) -> Vec<(&'v str, &'v Value)> {
    at(t, &["Resources"])
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .map(|(k, r)| (k.as_str().unwrap_or(""), r))
        .collect()
}

/// Every `Resource` of every IAM statement, however deep.
fn statement_resources(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Mapping(m) => {
            if m.contains_key("Effect")
                && let Some(r) = m.get("Resource")
            {
                out.push(r.clone());
            }
            m.values().for_each(|v| statement_resources(v, out));
        }
        Value::Sequence(s) => s.iter().for_each(|v| statement_resources(v, out)),
        Value::Tagged(t) => statement_resources(&t.value, out),
        _ => {}
    }
}

#[test]
fn install_template_parameters_function_and_runtime() {
    let t = template("install.yaml");
    let params: Vec<&str> = at(&t, &["Parameters"])
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(Value::as_str)
        .collect();
    for p in [
        "ProjectAccessKey",
        "ProjectAccessKeySecretArn",
        "Pcode",
        "Host",
        "Port",
        "TimeOut",
        "MemorySize",
        "UseReservedConcurrency",
        "ReservedConcurrency",
        "CodeBucket",
        "CodeKey",
        "MapperBucket",
        "MapperKey",
        "MapperSha256",
        "Architecture",
        "LogLevel",
    ] {
        assert!(params.contains(&p), "missing parameter {p}");
    }
    assert_eq!(
        at(&t, &["Parameters", "Host", "Default"]).as_str(),
        Some("13.124.11.223/13.209.172.35")
    );
    assert_eq!(
        at(&t, &["Parameters", "Port", "Default"]).as_u64(),
        Some(6600)
    );
    assert_eq!(
        at(&t, &["Parameters", "TimeOut", "Default"]).as_u64(),
        Some(150)
    );
    assert_eq!(
        at(&t, &["Parameters", "MemorySize", "MinValue"]).as_u64(),
        Some(128)
    );
    assert_eq!(
        at(&t, &["Parameters", "MemorySize", "MaxValue"]).as_u64(),
        Some(3008)
    );
    assert_eq!(
        at(&t, &["Parameters", "ProjectAccessKey", "NoEcho"]).as_bool(),
        Some(true)
    );
    let arch = at(&t, &["Parameters", "Architecture"]);
    assert_eq!(arch.get("Default").and_then(Value::as_str), Some("arm64"));
    let allowed: Vec<&str> = arch
        .get("AllowedValues")
        .and_then(Value::as_sequence)
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["arm64", "x86_64"]);

    // One forwarding function, not one per option (the scheduled replay is another job).
    let functions: Vec<_> = resources_of_type(&t, "AWS::Lambda::Function")
        .into_iter()
        .filter(|(_, f)| f.get("Condition").is_none())
        .collect();
    assert_eq!(
        functions.len(),
        1,
        "one function resource, not one per option"
    );
    let f = at(functions[0].1, &["Properties"]);
    assert_eq!(f["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(f["Handler"].as_str(), Some("bootstrap"));
    let archs = f["Architectures"].as_sequence().unwrap();
    assert_eq!(
        tagged(&archs[0]).map(|(tag, v)| (tag, v.as_str().map(str::to_owned))),
        Some(("!Ref".into(), Some("Architecture".into())))
    );
    // Reserved concurrency only when asked for.
    let (tag, args) = tagged(&f["ReservedConcurrentExecutions"]).expect("!If");
    assert_eq!(tag, "!If");
    let args = args.as_sequence().unwrap();
    assert_eq!(args[0].as_str(), Some("UseReserved"));
    assert_eq!(
        tagged(&args[2]).map(|(t, v)| (t, v.as_str().map(str::to_owned))),
        Some(("!Ref".into(), Some("AWS::NoValue".into())))
    );
    let (tag, cond) = tagged(at(&t, &["Conditions", "UseReserved"])).unwrap();
    assert_eq!(tag, "!Equals");
    assert_eq!(cond[1].as_str(), Some("true"));
    // The license never comes back in an output.
    let outputs = serde_norway::to_string(at(&t, &["Outputs"])).unwrap();
    assert!(!outputs.contains("ProjectAccessKey"));
    assert!(
        at(&t, &["Outputs", "WhaTapRDSLogArn"])
            .get("Value")
            .is_some()
    );
}

#[test]
fn install_template_iam_is_least_privilege() {
    let t = template("install.yaml");
    let mut resources = Vec::new();
    statement_resources(at(&t, &["Resources", "FunctionRole"]), &mut resources);
    assert!(resources.len() >= 4, "{resources:?}");
    for r in &resources {
        let text = serde_norway::to_string(r).unwrap();
        assert!(
            !text.trim().ends_with('*') && text.trim() != "'*'",
            "a wildcard resource: {text}"
        );
    }
    let role = serde_norway::to_string(at(&t, &["Resources", "FunctionRole"])).unwrap();
    assert!(
        role.contains("arn:${AWS::Partition}:s3:::${MapperBucket}/${MapperKey}"),
        "s3:GetObject on the mapper object only"
    );
    assert!(!role.contains("s3:*") && !role.contains("s3:::*"));
    assert!(
        role.contains("${FunctionLogGroup.Arn}"),
        "logs on its own log group"
    );
    // The S3 statement exists only when a mapper is configured.
    assert!(role.contains("HasMapper"));
}

#[test]
fn install_template_keeps_undeliverable_events_and_scopes_invokers() {
    let t = template("install.yaml");
    let configs = resources_of_type(&t, "AWS::Lambda::EventInvokeConfig");
    assert_eq!(configs.len(), 1);
    let p = at(configs[0].1, &["Properties"]);
    assert!(p.get("MaximumRetryAttempts").is_some());
    let (tag, dest) = tagged(at(p, &["DestinationConfig", "OnFailure", "Destination"])).unwrap();
    assert_eq!(
        (tag.as_str(), dest.as_str()),
        ("!GetAtt", Some("FailedEventQueue.Arn"))
    );
    let queue = at(&t, &["Resources", "FailedEventQueue"]);
    assert_eq!(queue["Type"].as_str(), Some("AWS::SQS::Queue"));
    assert!(queue["Properties"].get("MessageRetentionPeriod").is_some());
    // The largest event Lambda accepts asynchronously fits in the queue.
    assert_eq!(
        queue["Properties"]["MaximumMessageSize"].as_u64(),
        Some(1_048_576)
    );
    // EventBridge's permission lives with its rule (settings.yaml), scoped to that rule.
    // CloudWatch Logs may invoke from the RDS groups (proxies' included) and Enhanced
    // Monitoring's group, of this account; the scheduled replay's rule invokes the replay.
    let permissions = resources_of_type(&t, "AWS::Lambda::Permission");
    assert_eq!(permissions.len(), 3);
    let sources: Vec<String> = permissions
        .iter()
        .map(|(_, r)| serde_norway::to_string(&r["Properties"]["SourceArn"]).unwrap())
        .collect();
    for group in ["log-group:/aws/rds/*", "log-group:RDSOSMetrics:*"] {
        assert!(
            sources
                .iter()
                .any(|s| s.contains(&format!("${{AWS::AccountId}}:{group}"))),
            "{group}: {sources:?}"
        );
    }
    let principals: Vec<String> = permissions
        .iter()
        .map(|(_, r)| {
            let p = &r["Properties"];
            assert!(
                p.get("SourceAccount").is_some() && p.get("SourceArn").is_some(),
                "unscoped permission"
            );
            serde_norway::to_string(&p["Principal"]).unwrap()
        })
        .collect();
    assert!(
        principals
            .iter()
            .any(|p| p.contains("logs.${AWS::Region}.amazonaws.com")),
        "{principals:?}"
    );
    let settings = template("settings.yaml");
    let permissions = resources_of_type(&settings, "AWS::Lambda::Permission");
    // The forwarder's, for the RDS event rule; the subscriber's two, for its own rules.
    assert_eq!(permissions.len(), 3);
    for (name, rule) in [
        ("RdsEventRulePermission", "RdsEventRule.Arn"),
        ("SubscribeSchedulePermission", "SubscribeScheduleRule.Arn"),
        ("SubscribeOnCreatePermission", "SubscribeOnCreateRule.Arn"),
    ] {
        let p = &at(&settings, &["Resources", name])["Properties"];
        assert_eq!(p["Principal"].as_str(), Some("events.amazonaws.com"));
        assert_eq!(
            tagged(&p["SourceArn"]).map(|(tag, v)| (tag, v.as_str().map(str::to_owned))),
            Some(("!GetAtt".into(), Some(rule.into()))),
            "{name}: the rule's own ARN, not rule/*"
        );
    }
}

#[test]
fn install_template_watches_what_fails_and_keeps_the_license_in_a_secret() {
    let t = template("install.yaml");
    // An alarm on each way an event can be held back or lost, notifying the optional topic.
    let metrics: Vec<String> = resources_of_type(&t, "AWS::CloudWatch::Alarm")
        .iter()
        .map(|(_, a)| {
            let p = &a["Properties"];
            let actions = serde_norway::to_string(&p["AlarmActions"]).unwrap();
            assert!(actions.contains("HasAlarmTopic"), "{actions}");
            assert_eq!(p["Threshold"].as_u64(), Some(0));
            p["MetricName"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        metrics,
        [
            "ApproximateNumberOfMessagesVisible",
            "DestinationDeliveryFailures",
            "Errors",
            "Throttles"
        ]
    );
    // The license goes into a secret the stack creates; the function gets only its ARN.
    let secret = at(&t, &["Resources", "LicenseSecret"]);
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    assert_eq!(secret["Condition"].as_str(), Some("CreateSecret"));
    let env = function_env(&t);
    assert!(
        env.get("WHATAP_LICENSE").is_none(),
        "no license in the environment"
    );
    let arn = serde_norway::to_string(&env["WHATAP_LICENSE_SECRET_ARN"]).unwrap();
    assert!(
        arn.contains("LicenseSecret") && arn.contains("ProjectAccessKeySecretArn"),
        "{arn}"
    );
    let function = serde_norway::to_string(at(&t, &["Resources", "Function"])).unwrap();
    assert!(
        !function
            .replace("ProjectAccessKeySecretArn", "")
            .contains("ProjectAccessKey"),
        "the function never names the license parameter: {function}"
    );
    // kms:Decrypt only when a customer key is named.
    let role = serde_norway::to_string(at(&t, &["Resources", "FunctionRole"])).unwrap();
    assert!(
        role.contains("kms:Decrypt") && role.contains("HasLicenseKey"),
        "{role}"
    );
    // A precompiled mapper key needs its pin; a .wasm key cannot name a .cwasm.
    let rule = at(&t, &["Rules", "PrecompiledMapperIsPinned"]);
    let rule_text = serde_norway::to_string(rule).unwrap();
    assert!(
        rule_text.contains("MapperPrecompiledKey") && rule_text.contains("MapperSha256"),
        "{rule_text}"
    );
    assert_eq!(
        at(&t, &["Parameters", "MapperKey", "AllowedPattern"]).as_str(),
        Some("^(?!.*\\.cwasm$).*$")
    );
    assert_eq!(
        at(
            &t,
            &["Parameters", "MapperPrecompiledKey", "AllowedPattern"]
        )
        .as_str(),
        Some("^(.*\\.cwasm)?$")
    );
}

#[test]
fn settings_template_parks_undeliverable_rds_events() {
    let t = template("settings.yaml");
    let target = &at(&t, &["Resources", "RdsEventRule", "Properties", "Targets"])[0];
    let (tag, dlq) = tagged(at(target, &["DeadLetterConfig", "Arn"])).unwrap();
    assert_eq!(
        (tag.as_str(), dlq.as_str()),
        ("!GetAtt", Some("EventDeadLetterQueue.Arn"))
    );
    assert!(target["RetryPolicy"].get("MaximumRetryAttempts").is_some());
    assert!(
        target["RetryPolicy"]
            .get("MaximumEventAgeInSeconds")
            .is_some()
    );
    // Only the rule may send to its dead-letter queue, and an alarm watches it.
    let policy =
        serde_norway::to_string(at(&t, &["Resources", "EventDeadLetterQueuePolicy"])).unwrap();
    assert!(
        policy.contains("aws:SourceArn") && policy.contains("RdsEventRule.Arn"),
        "{policy}"
    );
    let alarm = at(&t, &["Resources", "EventDeadLetterAlarm", "Properties"]);
    assert_eq!(
        alarm["MetricName"].as_str(),
        Some("ApproximateNumberOfMessagesVisible")
    );
}

/// Expands `Fn::ForEach::<name>: [var, !Ref list, {template}]` as AWS::LanguageExtensions does:
/// `&{var}` in a key becomes the value less its non-alphanumerics, `!Ref var` becomes the value.
fn expand_for_each(resources: &Value, list_param: &str, values: &[&str]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (key, body) in resources.as_mapping().unwrap() {
        let key = key.as_str().unwrap();
        if !key.starts_with("Fn::ForEach::") {
            continue;
        }
        let spec = body.as_sequence().unwrap();
        let var = spec[0].as_str().unwrap();
        let (_, list) = tagged(&spec[1]).unwrap();
        assert_eq!(list.as_str(), Some(list_param));
        for value in values {
            let alnum: String = value.chars().filter(char::is_ascii_alphanumeric).collect();
            for (name, resource) in spec[2].as_mapping().unwrap() {
                let name = name
                    .as_str()
                    .unwrap()
                    .replace(&format!("&{{{var}}}"), &alnum);
                out.push((name, substitute(resource, var, value)));
            }
        }
    }
    out
}

fn substitute(v: &Value, var: &str, value: &str) -> Value {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" && t.value.as_str() == Some(var) => {
            Value::String(value.to_owned())
        }
        Value::Tagged(t) => Value::Tagged(Box::new(serde_norway::value::TaggedValue {
            tag: t.tag.clone(),
            value: substitute(&t.value, var, value),
        })),
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, var, value)))
                .collect(),
        ),
        Value::Sequence(s) => {
            Value::Sequence(s.iter().map(|v| substitute(v, var, value)).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn settings_template_subscribes_any_number_of_log_groups() {
    let t = template("settings.yaml");
    assert_eq!(t["Transform"].as_str(), Some("AWS::LanguageExtensions"));
    for p in [
        "WhaTapRDSLogArn",
        "EventRuleName",
        "AwsRdsNames",
        "LogGroupNames",
        "FilterPattern",
    ] {
        assert!(
            at(&t, &["Parameters"]).get(p).is_some(),
            "missing parameter {p}"
        );
    }
    assert_eq!(
        at(&t, &["Parameters", "LogGroupNames", "Type"]).as_str(),
        Some("CommaDelimitedList")
    );
    for n in [1usize, 3, 12] {
        let groups: Vec<String> = (0..n)
            .map(|i| format!("/aws/rds/instance/db-{i}/error"))
            .collect();
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        let filters = expand_for_each(at(&t, &["Resources"]), "LogGroupNames", &groups);
        assert_eq!(
            filters.len(),
            n,
            "{n} log groups → {n} subscription filters"
        );
        let mut names: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "distinct logical ids");
        for ((_, f), group) in filters.iter().zip(&groups) {
            assert_eq!(f["Type"].as_str(), Some("AWS::Logs::SubscriptionFilter"));
            assert_eq!(f["Properties"]["LogGroupName"].as_str(), Some(*group));
            assert_eq!(
                f["Condition"].as_str(),
                Some("HasLogGroups"),
                "no filter for \"none\""
            );
        }
    }
    // Enhanced Monitoring's group, when asked for.
    let em = at(&t, &["Resources", "OsMetricsSubscriptionFilter"]);
    assert_eq!(em["Condition"].as_str(), Some("HasOsMetrics"));
    assert_eq!(
        em["Properties"]["LogGroupName"].as_str(),
        Some("RDSOSMetrics")
    );
    assert_eq!(
        at(&t, &["Parameters", "EnhancedMonitoring", "Default"]).as_str(),
        Some("false")
    );
    let rule = at(&t, &["Resources", "RdsEventRule"]);
    assert_eq!(rule["Condition"].as_str(), Some("HasRule"));
    let pattern = serde_norway::to_string(&rule["Properties"]["EventPattern"]).unwrap();
    assert!(
        pattern.contains("aws.rds")
            && pattern.contains("SourceIdentifier")
            && pattern.contains("rds:"),
        "{pattern}"
    );
}

/// No twelve-digit number (an account id) anywhere in a template's text: what differs per
/// account comes from parameters and pseudo parameters, so StackSets can deploy it anywhere.
fn assert_no_account_ids(name: &str) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy")
            .join(name),
    )
    .unwrap();
    let digits: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|d| d.len() == 12)
        .collect();
    assert!(digits.is_empty(), "{name} names {digits:?}");
}

#[test]
fn central_template_reads_a_destination_stream_with_partial_batch_responses() {
    let t = template("central.yaml");
    assert_no_account_ids("central.yaml");
    let (_, stream) = resources_of_type(&t, "AWS::Kinesis::Stream")[0];
    assert_eq!(
        stream["Properties"]["StreamEncryption"]["EncryptionType"].as_str(),
        Some("KMS")
    );
    // The destination writes to the stream, and names who may subscribe: the accounts or the
    // organization.
    let (_, dest) = resources_of_type(&t, "AWS::Logs::Destination")[0];
    let policy = serde_norway::to_string(&dest["Properties"]["DestinationPolicy"]).unwrap();
    assert!(
        policy.contains("logs:PutSubscriptionFilter")
            && policy.contains("aws:PrincipalOrgID")
            && policy.contains("${Accounts}")
            && policy.contains("SourceAccountIds"),
        "{policy}"
    );
    let target = tagged(&dest["Properties"]["TargetArn"]).unwrap();
    assert_eq!(target.0, "!GetAtt");
    assert_eq!(target.1.as_str(), Some("LogStream.Arn"));
    // The event source mapping: partial batch responses, bisection, a failure destination.
    let (_, esm) = resources_of_type(&t, "AWS::Lambda::EventSourceMapping")[0];
    let p = &esm["Properties"];
    assert_eq!(
        p["FunctionResponseTypes"].as_sequence().unwrap()[0].as_str(),
        Some("ReportBatchItemFailures")
    );
    assert_eq!(p["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert!(tagged(&p["DestinationConfig"]["OnFailure"]["Destination"]).is_some());
    assert_eq!(esm["DependsOn"].as_str(), Some("StreamReadPolicy"));
    // The forwarder's role may read this stream and nothing else; no statement names "*".
    let mut resources = Vec::new();
    statement_resources(at(&t, &["Resources"]), &mut resources);
    assert!(!resources.is_empty());
    for r in &resources {
        assert_ne!(r.as_str(), Some("*"), "{resources:?}");
    }
    // Other accounts' RDS events: the bus accepts them, a rule sends them to the function.
    let (_, bus) = resources_of_type(&t, "AWS::Events::EventBusPolicy")[0];
    let statement = serde_norway::to_string(&bus["Properties"]["Statement"]).unwrap();
    assert!(
        statement.contains("events:PutEvents") && statement.contains("aws:PrincipalOrgID"),
        "{statement}"
    );
    let rule = at(&t, &["Resources", "ForwardedEventRule", "Properties"]);
    let pattern = serde_norway::to_string(&rule["EventPattern"]).unwrap();
    assert!(
        pattern.contains("aws.rds") && pattern.contains("anything-but"),
        "{pattern}"
    );
    assert!(tagged(&rule["Targets"][0]["DeadLetterConfig"]["Arn"]).is_some());
    for alarm in [
        "FailedRecordAlarm",
        "IteratorAgeAlarm",
        "EventDeadLetterAlarm",
    ] {
        at(&t, &["Resources", alarm]);
    }
    // The install stack gives the role's name for it.
    let install = template("install.yaml");
    assert_eq!(
        tagged(at(&install, &["Outputs", "FunctionRoleName", "Value"]))
            .unwrap()
            .1
            .as_str(),
        Some("FunctionRole")
    );
}

#[test]
fn source_template_subscribes_to_the_destination_and_forwards_events() {
    let t = template("source.yaml");
    assert_no_account_ids("source.yaml");
    assert_no_account_ids("settings.yaml");
    let groups = ["/aws/rds/instance/a/error", "/aws/rds/cluster/b/slowquery"];
    let filters = expand_for_each(at(&t, &["Resources"]), "LogGroupNames", &groups);
    assert_eq!(filters.len(), 2);
    for ((_, f), group) in filters.iter().zip(&groups) {
        assert_eq!(f["Properties"]["LogGroupName"].as_str(), Some(*group));
        let (tag, dest) = tagged(&f["Properties"]["DestinationArn"]).unwrap();
        assert_eq!(
            (tag.as_str(), dest.as_str()),
            ("!Ref", Some("DestinationArn"))
        );
        // A cross-account destination needs no role on the subscriber's side.
        assert!(f["Properties"].get("RoleArn").is_none());
    }
    let rule = at(&t, &["Resources", "RdsEventForwardRule", "Properties"]);
    let target = &rule["Targets"][0];
    assert_eq!(
        tagged(&target["Arn"]).map(|(_, v)| v.as_str()),
        Some(Some("CentralEventBusArn"))
    );
    assert!(tagged(&target["RoleArn"]).is_some());
    let role = serde_norway::to_string(at(&t, &["Resources", "EventForwardRole"])).unwrap();
    assert!(
        role.contains("events:PutEvents") && role.contains("CentralEventBusArn"),
        "{role}"
    );
}

#[test]
fn settings_and_source_templates_offer_the_subscriber_function() {
    subscriber_function("settings.yaml", "WhaTapRDSLogArn");
    subscriber_function("source.yaml", "DestinationArn");
}

/// The subscriber of `name`: subscribing to its parameter `destination`.
fn subscriber_function(name: &str, destination: &str) {
    let t = template(name);
    let names = [
        "SubscriberRole",
        "SubscriberLogGroup",
        "SubscriberFunction",
        "SubscribeScheduleRule",
        "SubscribeOnCreateRule",
        "SubscribeSchedulePermission",
        "SubscribeOnCreatePermission",
    ];
    for n in names {
        assert_eq!(
            at(&t, &["Resources", n, "Condition"]).as_str(),
            Some("HasSubscriber"),
            "{n} only with AutoSubscribe"
        );
    }
    assert_eq!(
        at(&t, &["Parameters", "AutoSubscribe", "Default"]).as_str(),
        Some("false")
    );
    let vars = at(
        &t,
        &[
            "Resources",
            "SubscriberFunction",
            "Properties",
            "Environment",
            "Variables",
        ],
    );
    assert_eq!(vars["RDS_FORWARDER_MODE"].as_str(), Some("subscriber"));
    assert_eq!(
        tagged(&vars["SUBSCRIBE_DESTINATION_ARN"]).map(|(_, v)| v.as_str()),
        Some(Some(destination)),
        "{name}"
    );
    // Its role may put filters on RDS's groups only, and nothing on "*".
    let role = at(&t, &["Resources", "SubscriberRole"]);
    let mut resources = Vec::new();
    statement_resources(role, &mut resources);
    for r in &resources {
        assert_ne!(r.as_str(), Some("*"));
    }
    let text = serde_norway::to_string(role).unwrap();
    assert!(
        text.contains("log-group:/aws/rds/*") && text.contains("logs:PutSubscriptionFilter"),
        "{text}"
    );
    assert!(
        !text.contains("DeleteSubscriptionFilter"),
        "it never removes a filter"
    );
    // On a schedule, and on CloudTrail's CreateLogGroup for RDS's names.
    let create = serde_norway::to_string(at(
        &t,
        &[
            "Resources",
            "SubscribeOnCreateRule",
            "Properties",
            "EventPattern",
        ],
    ))
    .unwrap();
    assert!(
        create.contains("CreateLogGroup")
            && create.contains("/aws/rds/")
            && create.contains("RDSOSMetrics"),
        "{create}"
    );
    assert_eq!(
        tagged(at(
            &t,
            &[
                "Resources",
                "SubscribeScheduleRule",
                "Properties",
                "ScheduleExpression"
            ]
        ))
        .map(|(_, v)| v.as_str()),
        Some(Some("SubscribeSchedule"))
    );
    let rules = serde_norway::to_string(at(&t, &["Rules", "SubscriberHasCode"])).unwrap();
    assert!(rules.contains("SubscriberCodeBucket"), "{rules}");
}

#[test]
fn install_template_offers_a_dashboard_and_a_scheduled_replay() {
    let t = template("install.yaml");
    // Metrics: the namespace reaches the function; the dashboard reads it.
    let env = function_env(&t);
    assert_eq!(
        tagged(&env["METRICS_NAMESPACE"]).map(|(tag, v)| (tag, v.as_str().map(str::to_owned))),
        Some(("!Ref".into(), Some("MetricsNamespace".into())))
    );
    let dashboard = at(&t, &["Resources", "MetricsDashboard"]);
    assert_eq!(dashboard["Condition"].as_str(), Some("HasDashboard"));
    let (_, sub) = tagged(at(dashboard, &["Properties", "DashboardBody"])).expect("!Sub");
    let body = sub[0].as_str().unwrap();
    for metric in [
        "Records",
        "InputBytes",
        "WireBytes",
        "Batches",
        "Split",
        "DeliveryAttempts",
        "FailedDeliveryAttempts",
        "Failed",
        "MapTime",
        "SendTime",
        "ConfirmTime",
        "Duration",
        "Skipped",
        "ApproximateNumberOfMessagesVisible",
    ] {
        assert!(
            body.contains(&format!("\"{metric}")) || body.contains(metric),
            "{metric}"
        );
    }
    // With the names put in, the body is a dashboard's JSON.
    let filled = body
        .replace("${AWS::Region}", "us-east-1")
        .replace("${MetricsNamespace}", "RDSForwarder")
        .replace("${FunctionName}", "f")
        .replace("${QueueName}", "q");
    let json: serde_json::Value = serde_json::from_str(&filled).expect("dashboard JSON");
    assert_eq!(json["widgets"].as_array().unwrap().len(), 6);

    // The scheduled replay: only when a schedule is given, one drain at a time, the queue's
    // messages readable and deletable by the role and nothing more.
    let replay = at(&t, &["Resources", "ReplayFunction"]);
    assert_eq!(replay["Condition"].as_str(), Some("HasReplaySchedule"));
    let p = &replay["Properties"];
    assert_eq!(p["ReservedConcurrentExecutions"].as_u64(), Some(1));
    assert_eq!(
        p["Environment"]["Variables"]["RDS_FORWARDER_MODE"].as_str(),
        Some("replay")
    );
    let policy = at(&t, &["Resources", "ReplayPolicy"]);
    let mut resources = Vec::new();
    statement_resources(policy, &mut resources);
    assert_eq!(resources.len(), 1);
    assert_eq!(
        tagged(&resources[0]).map(|(tag, v)| (tag, v.as_str().map(str::to_owned))),
        Some(("!GetAtt".into(), Some("FailedEventQueue.Arn".into())))
    );
    let text = serde_norway::to_string(policy).unwrap();
    assert!(text.contains("sqs:DeleteMessage") && !text.contains("sqs:*"));
    let rule = at(&t, &["Resources", "ReplayScheduleRule", "Properties"]);
    assert_eq!(
        tagged(&rule["ScheduleExpression"]).map(|(tag, v)| (tag, v.as_str().map(str::to_owned))),
        Some(("!Ref".into(), Some("ReplaySchedule".into())))
    );
}
