//! Where a mapper or a mapping config comes from (`MAPPER_URI`, `MAPPER_CONFIG`: a file or
//! `s3://bucket/key`), and how it is read and revalidated: a conditional GET on the ETag for S3,
//! a hash comparison for a file. Both stores use it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::embedded;
use crate::s3::{Fetched, S3Client, S3Error, parse_uri};
use crate::sandbox::LoadError;

/// Where the mapper comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapperUri {
    Embedded,
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl MapperUri {
    pub fn parse(uri: Option<&str>) -> Result<MapperUri, SourceError> {
        match uri.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(MapperUri::Embedded),
            Some(u) if u.starts_with("s3://") => {
                let (bucket, key) = parse_uri(u)?;
                Ok(MapperUri::S3 { bucket, key })
            }
            Some(u) => Ok(MapperUri::File(PathBuf::from(u))),
        }
    }

    pub fn display(&self) -> String {
        match self {
            MapperUri::Embedded => embedded::ORIGIN.to_owned(),
            MapperUri::File(p) => p.display().to_string(),
            MapperUri::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("MAPPER_SHA256 is not 64 hex digits")]
    BadSha256,
    #[error("the object's SHA-256 is {actual}, but MAPPER_SHA256 pins {expected}: not running it")]
    Sha256Mismatch { expected: String, actual: String },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the mapper download task failed: {0}")]
    Task(String),
    #[error("MAPPER_FALLBACK must be `embedded` or `none`, got {0:?}")]
    BadFallback(String),
    #[error("{path} is {size} bytes, more than the {max} a mapper may be")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("the dry run over the canned event {event} failed: {error}")]
    DryRun {
        event: &'static str,
        error: crate::sandbox::RunError,
    },
}

impl SourceError {
    /// Whether the same object would be refused again: a bad object, not a failure to reach
    /// it. Such a refusal is remembered by the object's version; anything else is retried at
    /// the next refresh.
    /// A dry run that ran out of time may only have met a slow or busy machine, so it is tried
    /// again too.
    pub fn is_deterministic(&self) -> bool {
        match self {
            SourceError::Sha256Mismatch { .. }
            | SourceError::Load(_)
            | SourceError::TooLarge { .. } => true,
            SourceError::DryRun { error, .. } => !matches!(
                error,
                crate::sandbox::RunError::Timeout { .. } | crate::sandbox::RunError::Stalled { .. }
            ),
            _ => false,
        }
    }
}

pub(crate) fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An object's bytes and version (ETag for S3, SHA-256 for a file) if it changed since
/// `known`: what the mapper and the mapping-config stores both revalidate with.
pub(crate) async fn fetch(
    uri: &MapperUri,
    s3: Option<&Arc<S3Client>>,
    known: Option<&str>,
) -> Result<Option<(Vec<u8>, String)>, SourceError> {
    match uri {
        MapperUri::Embedded => Ok(None),
        MapperUri::File(path) => {
            let unreadable = |source| SourceError::File {
                path: path.display().to_string(),
                source,
            };
            let size = std::fs::metadata(path).map_err(unreadable)?.len();
            if size > crate::s3::MAX_OBJECT_BYTES {
                return Err(SourceError::TooLarge {
                    path: path.display().to_string(),
                    size,
                    max: crate::s3::MAX_OBJECT_BYTES,
                });
            }
            let bytes = std::fs::read(path).map_err(unreadable)?;
            let version = sha256_hex(&bytes);
            Ok((known != Some(version.as_str())).then_some((bytes, version)))
        }
        MapperUri::S3 { bucket, key } => {
            let Some(s3) = s3 else {
                return Err(S3Error::NoCredentials.into());
            };
            // ureq blocks: run it off the async worker.
            let (bucket, key, known, s3) = (
                bucket.clone(),
                key.clone(),
                known.map(str::to_owned),
                s3.clone(),
            );
            let fetched = tokio::task::spawn_blocking(move || {
                s3.get_if_changed(&bucket, &key, known.as_deref())
            })
            .await
            .map_err(|e| SourceError::Task(e.to_string()))??;
            Ok(match fetched {
                Fetched::NotModified => None,
                Fetched::Object { bytes, etag } => {
                    let version = etag.unwrap_or_else(|| sha256_hex(&bytes));
                    Some((bytes, version))
                }
            })
        }
    }
}

pub(crate) struct Revalidation {
    pub(crate) last_check: Option<Instant>,
    /// ETag (S3) or SHA-256 (file) of the last object tried, good or bad.
    pub(crate) version: Option<String>,
    /// A new mapper whose compilation outlasted the wait: its version, and the compilation.
    pub(crate) compiling: Option<(String, crate::sandbox::Compiling)>,
}

impl Revalidation {
    pub(crate) fn new(version: Option<String>) -> Revalidation {
        Revalidation {
            last_check: None,
            version,
            compiling: None,
        }
    }

    /// Whether `refresh` has passed since the last check; if so, this is the check now.
    pub(crate) fn due(&mut self, refresh: Duration) -> bool {
        if self.last_check.is_some_and(|t| t.elapsed() < refresh) {
            return false;
        }
        self.last_check = Some(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::RunError;

    #[test]
    fn a_bad_object_is_remembered_and_a_slow_dry_run_or_a_failed_fetch_is_not() {
        let dry_run = |error| SourceError::DryRun {
            event: "awslogs-mysql-error",
            error,
        };
        assert!(dry_run(RunError::Trap("unreachable".into())).is_deterministic());
        assert!(!dry_run(RunError::Timeout { budget_ms: 5000 }).is_deterministic());
        assert!(!dry_run(RunError::Stalled { limit_ms: 6000 }).is_deterministic());
        assert!(SourceError::Load(LoadError::NotWasm).is_deterministic());
        assert!(!SourceError::S3(S3Error::NoCredentials).is_deterministic());
    }
}
