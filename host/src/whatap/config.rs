//! The WhaTap sink's settings, from the environment the CloudFormation template sets.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `WHATAP_HOST` | required | collector hosts, `a/b` or `a,b` (tried in order, failing over) |
//! | `WHATAP_PORT` | 6600 | collector port |
//! | `WHATAP_LICENSE` | required | the project access key (never logged) |
//! | `WHATAP_PCODE` | from the license | checked against the license when set |
//! | `WHATAP_ONAME` | the function name | the agent name; its CRC-32 is the oid |
//! | `WHATAP_TRANSPORT` | `secure` | `secure` (handshake + HIDE/CYPHER) or `oneway` |
//! | `WHATAP_PROTECTION` | `hide` | `hide`, `cypher` or `plain` data frames (secure transport) |
//! | `WHATAP_CONNECT_TIMEOUT_MS` | 5000 | TCP connect + handshake |
//! | `WHATAP_WRITE_TIMEOUT_MS` | 10000 | one write, or one delivery confirmation |
//! | `WHATAP_SEND_BUDGET_MS` | 30000 | all attempts at one batch, retries included |
//! | `WHATAP_MAX_ATTEMPTS` | 6 | attempts at one batch |
//! | `WHATAP_CONFIRM` | `on` | after each batch, a TIME_SYNC round trip proves the collector read it |
//! | `WHATAP_IDLE_RECONNECT_MS` | 60000 | a connection idle longer is replaced before it carries data |
//! | `WHATAP_COMPRESSION_LEVEL` | 6 | gzip level of ZipPacks, 0 (stored) to 9 (smallest) |
//! | `WHATAP_ZIP_BYTES` | 1048576 | bytes of records per ZipPack, 4096 to 4194304 (WhaTap's agents send 65536) |

use std::time::Duration;

use thiserror::Error;

use super::encode::{DEFAULT_ZIP_BYTES, MAX_ZIP_BYTES, MIN_ZIP_BYTES};
use super::handshake::Protection;
use super::license::{License, LicenseError};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{var} is invalid: {why}")]
    Invalid { var: &'static str, why: String },
    // Not `#[from]`: the message already carries the cause, and a source would repeat it.
    #[error("WHATAP_LICENSE: {0}")]
    License(LicenseError),
    #[error("{0}")]
    Pcode(LicenseError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Secure(Protection),
    OneWay,
}

#[derive(Debug, Clone)]
pub struct WhatapConfig {
    pub hosts: Vec<String>,
    pub port: u16,
    pub license: License,
    pub oname: String,
    pub transport: Transport,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub send_budget: Duration,
    pub max_attempts: u32,
    pub confirm: bool,
    /// A warm connection idle for longer is replaced before it is written to: NAT gateways
    /// and load balancers forget idle flows after 350 s (AWS) or less, often silently.
    pub idle_reconnect: Duration,
    /// The gzip level of ZipPacks: bytes on the wire cost more than the CPU time to shrink
    /// them (see `gzip::DEFAULT_LEVEL`).
    pub compression_level: u32,
    /// Bytes of serialized records per ZipPack (`encode::DEFAULT_ZIP_BYTES`).
    pub zip_bytes: usize,
}

/// Splits `a/b`, `a,b` (with spaces) into hosts.
pub fn parse_hosts(s: &str) -> Vec<String> {
    s.split(['/', ','])
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

impl WhatapConfig {
    /// Reads the settings through `var` (the process environment, or a map in tests).
    /// `default_oname` is used when `WHATAP_ONAME` is unset.
    pub fn from_lookup(
        var: impl Fn(&str) -> Option<String>,
        default_oname: &str,
    ) -> Result<WhatapConfig, ConfigError> {
        let get = |name: &'static str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(ConfigError::Invalid {
                        var: name,
                        why: format!("expected a positive integer, got {v:?}"),
                    }),
            }
        };
        let hosts = parse_hosts(&get("WHATAP_HOST").ok_or(ConfigError::Missing("WHATAP_HOST"))?);
        if hosts.is_empty() {
            return Err(ConfigError::Invalid {
                var: "WHATAP_HOST",
                why: "no host in it".into(),
            });
        }
        let port = number("WHATAP_PORT", 6600)?;
        let port = u16::try_from(port).map_err(|_| ConfigError::Invalid {
            var: "WHATAP_PORT",
            why: format!("{port} is not a port number"),
        })?;
        // The license text is never echoed, whatever is wrong with it.
        let license =
            License::parse(&var("WHATAP_LICENSE").ok_or(ConfigError::Missing("WHATAP_LICENSE"))?)
                .map_err(ConfigError::License)?;
        let pcode = match get("WHATAP_PCODE") {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| ConfigError::Invalid {
                var: "WHATAP_PCODE",
                why: format!("expected a project code (an integer), got {v:?}"),
            })?),
        };
        license.check_pcode(pcode).map_err(ConfigError::Pcode)?;
        let protection = match get("WHATAP_PROTECTION").as_deref() {
            None | Some("hide") => Protection::Hide,
            Some("cypher") => Protection::Cypher,
            Some("plain") => Protection::Plain,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "WHATAP_PROTECTION",
                    why: format!("expected hide, cypher or plain, got {other:?}"),
                });
            }
        };
        let transport = match get("WHATAP_TRANSPORT").as_deref() {
            None | Some("secure") => Transport::Secure(protection),
            Some("oneway") | Some("one-way") => Transport::OneWay,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "WHATAP_TRANSPORT",
                    why: format!("expected secure or oneway, got {other:?}"),
                });
            }
        };
        let confirm = match get("WHATAP_CONFIRM").as_deref() {
            None | Some("on") | Some("true") | Some("1") => true,
            Some("off") | Some("false") | Some("0") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "WHATAP_CONFIRM",
                    why: format!("expected on or off, got {other:?}"),
                });
            }
        };
        let max_attempts = number("WHATAP_MAX_ATTEMPTS", 6)?;
        let compression_level = match get("WHATAP_COMPRESSION_LEVEL") {
            None => super::gzip::DEFAULT_LEVEL,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= super::gzip::MAX_LEVEL)
                .ok_or(ConfigError::Invalid {
                    var: "WHATAP_COMPRESSION_LEVEL",
                    why: format!("expected 0 to 9, got {v:?}"),
                })?,
        };
        let zip_bytes = number("WHATAP_ZIP_BYTES", DEFAULT_ZIP_BYTES as u64)?;
        let zip_bytes = usize::try_from(zip_bytes)
            .ok()
            .filter(|n| (MIN_ZIP_BYTES..=MAX_ZIP_BYTES).contains(n))
            .ok_or(ConfigError::Invalid {
                var: "WHATAP_ZIP_BYTES",
                why: format!("expected {MIN_ZIP_BYTES} to {MAX_ZIP_BYTES}, got {zip_bytes}"),
            })?;
        Ok(WhatapConfig {
            hosts,
            port,
            license,
            oname: get("WHATAP_ONAME").unwrap_or_else(|| default_oname.to_owned()),
            transport,
            connect_timeout: Duration::from_millis(number("WHATAP_CONNECT_TIMEOUT_MS", 5000)?),
            write_timeout: Duration::from_millis(number("WHATAP_WRITE_TIMEOUT_MS", 10_000)?),
            send_budget: Duration::from_millis(number("WHATAP_SEND_BUDGET_MS", 30_000)?),
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            confirm: confirm && transport != Transport::OneWay,
            idle_reconnect: Duration::from_millis(number("WHATAP_IDLE_RECONNECT_MS", 60_000)?),
            compression_level,
            zip_bytes,
        })
    }

    /// Reads the process environment.
    pub fn from_env(default_oname: &str) -> Result<WhatapConfig, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok(), default_oname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const LICENSE: &str = "x4c1p2g0g40o4-xa1g7104gk2oc-xq3gf208h44ok";

    fn cfg(vars: &[(&str, &str)]) -> Result<WhatapConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WhatapConfig::from_lookup(|k| map.get(k).cloned(), "fn-name")
    }

    #[test]
    fn defaults_and_host_lists() {
        let c = cfg(&[
            ("WHATAP_HOST", "13.124.11.223 / 13.209.172.35"),
            ("WHATAP_LICENSE", LICENSE),
        ])
        .unwrap();
        assert_eq!(c.hosts, ["13.124.11.223", "13.209.172.35"]);
        assert_eq!(
            (c.port, c.oname.as_str(), c.license.pcode),
            (6600, "fn-name", 12345)
        );
        assert_eq!(c.transport, Transport::Secure(Protection::Hide));
        assert!(c.confirm);
        assert_eq!((c.compression_level, c.zip_bytes), (6, 1 << 20));
        assert_eq!(parse_hosts("a,b/c, "), ["a", "b", "c"]);
    }

    #[test]
    fn compression_settings_are_read_and_bounded() {
        let with = |k, v| cfg(&[("WHATAP_HOST", "h"), ("WHATAP_LICENSE", LICENSE), (k, v)]);
        let c = with("WHATAP_COMPRESSION_LEVEL", "9").unwrap();
        assert_eq!(c.compression_level, 9);
        assert_eq!(
            with("WHATAP_COMPRESSION_LEVEL", "0")
                .unwrap()
                .compression_level,
            0
        );
        assert_eq!(
            with("WHATAP_COMPRESSION_LEVEL", "10")
                .unwrap_err()
                .to_string(),
            "WHATAP_COMPRESSION_LEVEL is invalid: expected 0 to 9, got \"10\""
        );
        assert_eq!(
            with("WHATAP_ZIP_BYTES", "65536").unwrap().zip_bytes,
            64 << 10
        );
        assert_eq!(
            with("WHATAP_ZIP_BYTES", "5242880").unwrap_err().to_string(),
            "WHATAP_ZIP_BYTES is invalid: expected 4096 to 4194304, got 5242880"
        );
    }

    #[test]
    fn errors_name_the_variable_and_never_the_license() {
        let e = cfg(&[("WHATAP_LICENSE", LICENSE)]).unwrap_err();
        assert_eq!(e.to_string(), "WHATAP_HOST is not set");
        let e = cfg(&[
            ("WHATAP_HOST", "h"),
            ("WHATAP_LICENSE", LICENSE),
            ("WHATAP_PORT", "66000"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "WHATAP_PORT is invalid: 66000 is not a port number"
        );
        let e = cfg(&[
            ("WHATAP_HOST", "h"),
            ("WHATAP_LICENSE", LICENSE),
            ("WHATAP_PCODE", "999"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "WHATAP_PCODE is 999, but the license is for project 12345"
        );
        let bad = "x4c1p2g0g40o4-SECRET!-xq3gf208h44ok";
        let e = cfg(&[("WHATAP_HOST", "h"), ("WHATAP_LICENSE", bad)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "WHATAP_LICENSE: the license is malformed: token 2 of 3 is not a Hexa32 or decimal number"
        );
        assert!(!format!("{e:?}").contains("SECRET"));
        let e = cfg(&[
            ("WHATAP_HOST", "h"),
            ("WHATAP_LICENSE", LICENSE),
            ("WHATAP_TRANSPORT", "udp"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "WHATAP_TRANSPORT is invalid: expected secure or oneway, got \"udp\""
        );
    }

    #[test]
    fn one_way_cannot_confirm() {
        let c = cfg(&[
            ("WHATAP_HOST", "h"),
            ("WHATAP_LICENSE", LICENSE),
            ("WHATAP_TRANSPORT", "oneway"),
        ])
        .unwrap();
        assert_eq!(c.transport, Transport::OneWay);
        assert!(!c.confirm);
    }
}
