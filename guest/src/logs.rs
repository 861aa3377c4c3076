//! CloudWatch Logs events to `#RDS_LOG` records.

use crate::awslogs::{LogData, LogEvent};
use crate::formats::parse_message;
use crate::log_source::{LogGroup, instance_from_stream};
use crate::record::{CATEGORY_LOG, FieldValue, Record};

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

    /// The records of one log event: one per entry in its message, each with the entry's
    /// text kept whole and the fields its format's parser read.
    pub fn records(&self, event: &LogEvent<'_>, out: &mut impl FnMut(Record)) {
        let message: &str = &event.message;
        let entries = parse_message(&self.log_type, message);
        let several = entries.len() > 1;
        for (i, entry) in entries.into_iter().enumerate() {
            let parsed = entry.parsed;
            // The entry's own time when it says more than CloudWatch's (a fraction of a
            // second, or one of several entries sharing one CloudWatch timestamp).
            let time = match parsed.time_ms {
                Some(t) if parsed.precise || several => t,
                _ => event.timestamp,
            };
            let content = if several { entry.text } else { message };
            let mut r = Record::new(CATEGORY_LOG, time, content.to_owned());
            r.line = i as i64 + 1;
            r.tags.reserve(self.tags.len() + 4);
            r.tags.extend(self.tags.iter().cloned());
            r.tags
                .push(("cw_event_id".to_owned(), event.id.to_string()));
            if let Some(engine) = parsed.engine {
                r.tags.push(("engine".to_owned(), engine.to_owned()));
            }
            r.tags
                .push(("level".to_owned(), parsed.level.as_str().to_owned()));
            let status = if parsed.unparsed.is_some() {
                "unparsed"
            } else {
                "parsed"
            };
            r.tags.push(("parse_status".to_owned(), status.to_owned()));
            r.fields = parsed
                .fields
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v))
                .collect();
            if let Some(reason) = parsed.unparsed {
                r.fields.push((
                    "parse_error".to_owned(),
                    FieldValue::Text(reason.to_owned()),
                ));
            }
            out(r);
        }
    }
}
