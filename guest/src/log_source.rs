//! What a CloudWatch log group and stream name say about the RDS resource that wrote them.
//!
//! RDS names groups `/aws/rds/instance/<db-instance-id>/<log_type>` and
//! `/aws/rds/cluster/<cluster-id>/<log_type>`; streams are the member instance, sometimes with
//! a rotation or node suffix (`.0`, `.audit.log.2`, `.node1`). RDS Proxy writes to
//! `/aws/rds/proxy/<proxy-name>`: the proxy is the resource, and its log type is `proxy`.

/// Whether the group belongs to an instance, a cluster, or is not an RDS group at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Instance,
    Cluster,
    /// An RDS Proxy's group.
    Proxy,
    /// A group outside `/aws/rds/`; still forwarded, with what can be known.
    Other,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Instance => "instance",
            Scope::Cluster => "cluster",
            Scope::Proxy => "proxy",
            Scope::Other => "other",
        }
    }
}

/// The parts of a log group name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroup<'a> {
    pub scope: Scope,
    /// The instance or cluster id, or the proxy's name; `None` outside `/aws/rds/`.
    pub db_identifier: Option<&'a str>,
    /// The last path element: `error`, `slowquery`, `postgresql`, `alert`, …
    pub log_type: &'a str,
}

impl<'a> LogGroup<'a> {
    pub fn parse(group: &'a str) -> LogGroup<'a> {
        let parts: Vec<&str> = group.split('/').filter(|p| !p.is_empty()).collect();
        let log_type = parts.last().copied().unwrap_or("");
        match parts.as_slice() {
            ["aws", "rds", "proxy", name, ..] => LogGroup {
                scope: Scope::Proxy,
                db_identifier: Some(name),
                log_type: "proxy",
            },
            ["aws", "rds", kind @ ("instance" | "cluster"), id, _, ..] => LogGroup {
                scope: if *kind == "cluster" {
                    Scope::Cluster
                } else {
                    Scope::Instance
                },
                db_identifier: Some(id),
                log_type,
            },
            // Older or hand-made names such as `/aws/rds/mySQL-instance/error`.
            ["aws", "rds", id, _, ..] => LogGroup {
                scope: Scope::Instance,
                db_identifier: Some(id),
                log_type,
            },
            _ => LogGroup {
                scope: Scope::Other,
                db_identifier: None,
                log_type,
            },
        }
    }
}

/// The instance that wrote a stream: the stream name less any `.audit.log.N`, `.nodeN` or `.N`
/// suffix. RDS identifiers cannot contain dots, so only these suffix shapes are stripped.
pub fn instance_from_stream(stream: &str) -> &str {
    fn strip_number<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
        let dot = s.rfind('.')?;
        let tail = s[dot + 1..].strip_prefix(prefix)?;
        (!tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit())).then(|| &s[..dot])
    }
    if let Some(base) = strip_number(stream, "") {
        return base.strip_suffix(".audit.log").unwrap_or(base);
    }
    strip_number(stream, "node").unwrap_or(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_and_cluster_groups() {
        assert_eq!(
            LogGroup::parse("/aws/rds/instance/datadog/postgresql"),
            LogGroup {
                scope: Scope::Instance,
                db_identifier: Some("datadog"),
                log_type: "postgresql"
            }
        );
        assert_eq!(
            LogGroup::parse("/aws/rds/cluster/myaudb/audit"),
            LogGroup {
                scope: Scope::Cluster,
                db_identifier: Some("myaudb"),
                log_type: "audit"
            }
        );
        let oem = LogGroup::parse("/aws/rds/instance/ora1/oemagent-emctl");
        assert_eq!(oem.log_type, "oemagent-emctl");
    }

    #[test]
    fn odd_and_foreign_groups() {
        let odd = LogGroup::parse("/aws/rds/mySQL-instance/error");
        assert_eq!(
            (odd.scope, odd.db_identifier, odd.log_type),
            (Scope::Instance, Some("mySQL-instance"), "error")
        );
        // The proxy's name is the resource; the log type is `proxy`.
        assert_eq!(
            LogGroup::parse("/aws/rds/proxy/orders-proxy"),
            LogGroup {
                scope: Scope::Proxy,
                db_identifier: Some("orders-proxy"),
                log_type: "proxy"
            }
        );
        let other = LogGroup::parse("testLogGroup");
        assert_eq!(
            (other.scope, other.db_identifier, other.log_type),
            (Scope::Other, None, "testLogGroup")
        );
        assert_eq!(LogGroup::parse("").log_type, "");
    }

    #[test]
    fn stream_suffixes_are_stripped() {
        assert_eq!(instance_from_stream("datadog.0"), "datadog");
        assert_eq!(
            instance_from_stream("prod-aurora-inst-1.12"),
            "prod-aurora-inst-1"
        );
        assert_eq!(
            instance_from_stream("myaudb-instance-1.audit.log.1"),
            "myaudb-instance-1"
        );
        assert_eq!(
            instance_from_stream("mssql-database-1.node2"),
            "mssql-database-1"
        );
        assert_eq!(instance_from_stream("mariadb-inst-1"), "mariadb-inst-1");
        assert_eq!(instance_from_stream("odd.name"), "odd.name");
        assert_eq!(instance_from_stream("x.node"), "x.node");
        assert_eq!(instance_from_stream(""), "");
    }
}
