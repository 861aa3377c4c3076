//! CloudWatch Logs events to `#RDS_LOG` records.

use crate::awslogs::{LogData, LogEvent};
use crate::log_source::{LogGroup, instance_from_stream};
use crate::record::{CATEGORY_LOG, Record};

/// Tags shared by every record of one payload (one log stream), computed once.
#[derive(Debug, Clone)]
pub struct StreamTags {
    tags: Vec<(String, String)>,
    /// The log type from the group name, for choosing a parser.
    pub log_type: String,
}

impl StreamTags {
    pub fn new(data: &LogData<'_>) -> StreamTags {
        let group = LogGroup::parse(&data.log_group);
        let mut tags = vec![
            ("logGroup".to_owned(), data.log_group.to_string()),
            ("logStream".to_owned(), data.log_stream.to_string()),
        ];
        if let Some(id) = group.db_identifier {
            tags.push(("db_identifier".to_owned(), id.to_owned()));
        }
        tags.push(("scope".to_owned(), group.scope.as_str().to_owned()));
        tags.push(("log_type".to_owned(), group.log_type.to_owned()));
        tags.push((
            "instance".to_owned(),
            instance_from_stream(&data.log_stream).to_owned(),
        ));
        tags.push(("account".to_owned(), data.owner.to_string()));
        if let Some(policy) = &data.policy_level {
            tags.push(("policy_level".to_owned(), policy.to_string()));
        }
        StreamTags {
            tags,
            log_type: group.log_type.to_owned(),
        }
    }

    /// The record for one log event, its message forwarded whole.
    pub fn record(&self, event: &LogEvent<'_>) -> Record {
        let mut r = Record::new(CATEGORY_LOG, event.timestamp, event.message.to_string());
        r.tags.reserve(self.tags.len() + 1);
        r.tags.extend(self.tags.iter().cloned());
        r.tags
            .push(("cw_event_id".to_owned(), event.id.to_string()));
        r
    }
}
