//! Why mapping an event failed. Each variant names what was wrong in its message, so a user
//! reading one CloudWatch log line knows which input to look at.

use thiserror::Error;

/// A mapping failure. The `kind` decides whether a retry can help: a `Delivery` error is worth
/// retrying, the others fail the same way every time.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The event is not valid base64, gzip or JSON, or is larger than allowed.
    #[error("{0}")]
    Decode(String),
    /// The event is valid JSON but not a kind this mapper handles.
    #[error("{0}")]
    Unsupported(String),
    /// The mapper configuration is invalid.
    #[error("invalid mapper configuration: {0}")]
    Config(String),
    /// The sink refused a batch; the records were not delivered.
    #[error("delivery failed: {0}")]
    Delivery(String),
}

impl MapError {
    pub(crate) fn decode(msg: impl Into<String>) -> Self {
        MapError::Decode(msg.into())
    }
    pub(crate) fn unsupported(msg: impl Into<String>) -> Self {
        MapError::Unsupported(msg.into())
    }
}
