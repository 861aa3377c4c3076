//! What the function's environment may ask for, checked once at start: the mapper's memory
//! beside the host's, settings that would give up confirmed delivery, `MAPPER_SETTINGS`.

use thiserror::Error;

use crate::whatap::config::WhatapConfig;

/// What the host itself needs of the function's memory: the process, the engines and compiled
/// code, the WhaTap sink's unconfirmed packs, and headroom (a stress event peaks at 48 MiB of
/// resident memory all told).
pub const HOST_MEMORY_MB: usize = 64;

/// Why the forwarder could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("WhaTap settings: {0}")]
    Whatap(#[from] crate::whatap::config::ConfigError),
    #[error("mapper settings: {0}")]
    Mapper(#[from] crate::source::SourceError),
    #[error("MAPPER_MEMORY_MB must be a number of MiB between 16 and 4096, got {0:?}")]
    Memory(String),
    #[error(
        "MAPPER_MEMORY_MB is {asked}, but a function of {function} MB leaves the mapper at most \
         {most} MiB beside the host's {HOST_MEMORY_MB} MiB: lower it or raise the function's memory"
    )]
    MemoryOverFunction {
        asked: usize,
        function: usize,
        most: usize,
    },
    #[error(
        "{0} lets records go unconfirmed or unsent; in Lambda this needs \
         RDS_FORWARDER_UNSAFE_DELIVERY=1"
    )]
    UnsafeDelivery(&'static str),
    #[error("the embedded mapper does not load: {0}")]
    Embedded(#[from] crate::sandbox::LoadError),
    #[error("MAPPER_SETTINGS: {0:?} is not KEY=VALUE")]
    Settings(String),
    #[error(
        "{0} lets records go unconfirmed or unsent, and replay and backfill delete a message or \
         move their checkpoint only past what is confirmed delivered"
    )]
    Unconfirmed(&'static str),
    #[error("WHATAP_LICENSE_SECRET_ARN: {0}")]
    Secret(#[from] crate::secrets::SecretError),
}

/// `KEY=VALUE` pairs separated by `,` or `;` (spaces around them ignored).
pub fn parse_settings(text: &str) -> Result<Vec<(String, String)>, StartError> {
    text.split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(StartError::Settings(pair.to_owned())),
        })
        .collect()
}

/// The settings a mapper runs with: `MAPPER_SETTINGS`, and the mapping config as `rules`.
pub(super) fn live_config(
    settings: &[(String, String)],
    rules: Option<String>,
) -> Vec<(String, String)> {
    let mut config = settings.to_vec();
    if let Some(rules) = rules {
        config.push(("rules".into(), rules));
    }
    config
}

/// `MAPPER_MEMORY_MB`: by default what the function's memory leaves after the host's needs
/// (at most 4096, at least 16); a value above that is refused, since the sandbox could then
/// take the memory the host needs and the whole function would be killed.
pub fn mapper_memory_mb(asked: Option<&str>, function: Option<&str>) -> Result<usize, StartError> {
    let function = function.and_then(|f| f.trim().parse::<usize>().ok());
    let most = function.map_or(4096, |f| f.saturating_sub(HOST_MEMORY_MB).clamp(16, 4096));
    let Some(asked) = asked.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(most);
    };
    let mb = asked
        .parse::<usize>()
        .ok()
        .filter(|m| (16..=4096).contains(m))
        .ok_or_else(|| StartError::Memory(asked.to_owned()))?;
    match function {
        Some(function) if mb > most => Err(StartError::MemoryOverFunction {
            asked: mb,
            function,
            most,
        }),
        _ => Ok(mb),
    }
}

/// The setting, if any, under which a delivered event's records are not all confirmed (or not
/// even sent): one-way transport, confirmation off (for WhaTap), or the mapper's `decode_only`.
pub(super) fn unconfirmed_setting(
    whatap: Option<&WhatapConfig>,
    settings: &[(String, String)],
) -> Option<&'static str> {
    let decode_only = settings
        .iter()
        .any(|(k, v)| k == "decode_only" && v.trim() == "true");
    match whatap {
        Some(w) if w.transport == crate::whatap::config::Transport::OneWay => {
            Some("WHATAP_TRANSPORT=oneway")
        }
        Some(w) if !w.confirm => Some("WHATAP_CONFIRM=off"),
        _ if decode_only => Some("MAPPER_SETTINGS decode_only"),
        _ => None,
    }
}

/// In Lambda, every record is confirmed by the collector before the event counts as done.
/// The settings that give that up (for a measurement, or a collector that cannot confirm) need
/// `RDS_FORWARDER_UNSAFE_DELIVERY=1`, and are logged as a warning when they have it.
pub(super) fn check_delivery_is_safe(
    whatap: &WhatapConfig,
    settings: &[(String, String)],
    unsafe_delivery: Option<String>,
) -> Result<(), StartError> {
    let Some(setting) = unconfirmed_setting(Some(whatap), settings) else {
        return Ok(());
    };
    if unsafe_delivery.as_deref().map(str::trim) == Some("1") {
        tracing::warn!(
            setting,
            "Delivery is not confirmed (RDS_FORWARDER_UNSAFE_DELIVERY=1): records may be lost without an error."
        );
        Ok(())
    } else {
        Err(StartError::UnsafeDelivery(setting))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatap::config::WhatapConfig;

    #[test]
    fn mapper_memory_defaults_to_what_the_function_leaves_and_refuses_more() {
        assert_eq!(mapper_memory_mb(None, Some("256")).unwrap(), 192);
        assert_eq!(mapper_memory_mb(None, Some("10240")).unwrap(), 4096);
        assert_eq!(mapper_memory_mb(None, Some("128")).unwrap(), 64);
        assert_eq!(mapper_memory_mb(None, None).unwrap(), 4096);
        assert_eq!(mapper_memory_mb(Some("100"), Some("256")).unwrap(), 100);
        assert_eq!(
            mapper_memory_mb(Some("512"), Some("256"))
                .unwrap_err()
                .to_string(),
            "MAPPER_MEMORY_MB is 512, but a function of 256 MB leaves the mapper at most 192 MiB \
             beside the host's 64 MiB: lower it or raise the function's memory"
        );
        assert_eq!(
            mapper_memory_mb(Some("lots"), Some("256"))
                .unwrap_err()
                .to_string(),
            "MAPPER_MEMORY_MB must be a number of MiB between 16 and 4096, got \"lots\""
        );
    }

    #[test]
    fn unconfirmed_delivery_needs_the_unsafe_switch() {
        let whatap = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("WHATAP_HOST", "127.0.0.1"),
                (
                    "WHATAP_LICENSE",
                    "x4c1p2g0g40o4-xa1g7104gk2oc-xq3gf208h44ok",
                ),
            ];
            vars.extend_from_slice(extra);
            WhatapConfig::from_lookup(
                |k| {
                    vars.iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.to_string())
                },
                "fn",
            )
            .unwrap()
        };
        let none: Vec<(String, String)> = Vec::new();
        assert!(check_delivery_is_safe(&whatap(&[]), &none, None).is_ok());
        let oneway = whatap(&[("WHATAP_TRANSPORT", "oneway")]);
        assert_eq!(
            check_delivery_is_safe(&oneway, &none, None)
                .unwrap_err()
                .to_string(),
            "WHATAP_TRANSPORT=oneway lets records go unconfirmed or unsent; in Lambda this needs \
             RDS_FORWARDER_UNSAFE_DELIVERY=1"
        );
        assert!(check_delivery_is_safe(&oneway, &none, Some("1".into())).is_ok());
        let unconfirmed = whatap(&[("WHATAP_CONFIRM", "off")]);
        assert!(matches!(
            check_delivery_is_safe(&unconfirmed, &none, Some("0".into())),
            Err(StartError::UnsafeDelivery("WHATAP_CONFIRM=off"))
        ));
        let decode_only = vec![("decode_only".to_owned(), "true".to_owned())];
        assert!(matches!(
            check_delivery_is_safe(&whatap(&[]), &decode_only, None),
            Err(StartError::UnsafeDelivery("MAPPER_SETTINGS decode_only"))
        ));
        let off = vec![("decode_only".to_owned(), "false".to_owned())];
        assert!(check_delivery_is_safe(&whatap(&[]), &off, None).is_ok());
    }

    #[test]
    fn settings_pairs() {
        assert_eq!(
            parse_settings(" batch_max_records=1 ; max_content_bytes = 500000,").unwrap(),
            vec![
                ("batch_max_records".to_owned(), "1".to_owned()),
                ("max_content_bytes".to_owned(), "500000".to_owned())
            ]
        );
        assert!(parse_settings("").unwrap().is_empty());
        assert_eq!(
            parse_settings("oops").unwrap_err().to_string(),
            "MAPPER_SETTINGS: \"oops\" is not KEY=VALUE"
        );
    }
}
