//! Mapper settings passed by the host as key/value pairs (`invocation.config`).

use crate::error::MapError;

/// Bounds a gzip bomb: a legitimate CloudWatch batch is at most 1 MiB of messages plus JSON
/// framing (about 6 MiB in the worst case of escaped text), so 32 MiB is far above real data
/// and far below the sandbox's memory cap.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 32 << 20;
/// Records per `sink.send` call: large enough to amortize the component boundary, small
/// enough that one failed batch re-sends little.
pub const DEFAULT_BATCH_MAX_RECORDS: usize = 1000;
/// Bytes per `sink.send` call, as the batch crosses packed: its text, and 4 bytes per string
/// end and 8 per number. A batch is sent once it reaches this.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 1 << 20;
/// Content bytes of one record; a longer entry is split into parts. WhaTap's own agents cut
/// content at 1,000,000 bytes (`logsink_limit_content_length`); we split instead, so nothing is
/// lost, and every record stays far below the 5 MiB frame limit.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 1_000_000;

/// Validated mapper settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub max_decompressed_bytes: usize,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub max_content_bytes: usize,
    /// A dry run: decode the event and every message, map and send nothing, and report what
    /// was read. It shows what decoding alone costs in the sandbox (the benchmark's floor
    /// there), or checks a payload without delivering it.
    pub decode_only: bool,
    /// Every log record also carries the CloudWatch event id as `cw_event_id` (off: see
    /// `logs::StreamTags::with_event_ids`).
    pub cw_event_id: bool,
    /// Records that carry a statement get its SQL insight (`query_fingerprint`,
    /// `query_digest`, …; [`crate::sql`]). On; `sql_insight=false` turns it off.
    pub sql_insight: bool,
    /// A statement seen before in the invocation takes its insight from a memo (on). Off
    /// (`sql_memo=false`), every statement is fingerprinted anew: what SQL insight costs when
    /// no statement repeats, which the benchmark measures.
    pub sql_memo: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            batch_max_records: DEFAULT_BATCH_MAX_RECORDS,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            max_content_bytes: DEFAULT_MAX_CONTENT_BYTES,
            decode_only: false,
            cw_event_id: false,
            sql_insight: true,
            sql_memo: true,
        }
    }
}

impl Config {
    /// Reads the settings this mapper knows; keys it does not know are left for other layers
    /// (a custom mapper may define its own), so they are not an error.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Config, MapError> {
        let mut config = Config::default();
        for (key, value) in pairs {
            let flag = match key.as_str() {
                "decode_only" => Some(&mut config.decode_only),
                "cw_event_id" => Some(&mut config.cw_event_id),
                "sql_insight" => Some(&mut config.sql_insight),
                "sql_memo" => Some(&mut config.sql_memo),
                _ => None,
            };
            if let Some(flag) = flag {
                *flag = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(MapError::Config(format!(
                            "{key} must be true or false, got {value:?}"
                        )));
                    }
                };
                continue;
            }
            let slot = match key.as_str() {
                "max_decompressed_bytes" => &mut config.max_decompressed_bytes,
                "batch_max_records" => &mut config.batch_max_records,
                "batch_max_bytes" => &mut config.batch_max_bytes,
                "max_content_bytes" => &mut config.max_content_bytes,
                _ => continue,
            };
            *slot = match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(MapError::Config(format!(
                        "{key} must be a positive integer, got {value:?}"
                    )));
                }
            };
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_known_keys_and_ignores_others() {
        let c = Config::from_pairs(&pairs(&[("batch_max_records", "7"), ("other", "x")])).unwrap();
        assert_eq!(c.batch_max_records, 7);
        assert_eq!(c.batch_max_bytes, DEFAULT_BATCH_MAX_BYTES);
    }

    #[test]
    fn rejects_zero_and_garbage_naming_the_key() {
        let err = Config::from_pairs(&pairs(&[("batch_max_bytes", "0")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mapper configuration: batch_max_bytes must be a positive integer, got \"0\""
        );
        assert!(Config::from_pairs(&pairs(&[("max_decompressed_bytes", "lots")])).is_err());
        let err = Config::from_pairs(&pairs(&[("decode_only", "yes")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mapper configuration: decode_only must be true or false, got \"yes\""
        );
        assert!(
            Config::from_pairs(&pairs(&[("decode_only", "true")]))
                .unwrap()
                .decode_only
        );
        let c = Config::from_pairs(&pairs(&[("cw_event_id", "true")])).unwrap();
        assert!(c.cw_event_id && !Config::default().cw_event_id);
        let err = Config::from_pairs(&pairs(&[("cw_event_id", "1")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mapper configuration: cw_event_id must be true or false, got \"1\""
        );
    }
}
