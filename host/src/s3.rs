//! A small S3 reader: presigned GETs (rusty-s3) over a blocking HTTP client (ureq), which is all
//! the forwarder needs (a conditional GET of one object).
//!
//! Chosen over `aws-sdk-s3` on measured cost (reference/stack.md, same machine kind, same moto
//! flow): 70 s vs 5 min 40 s of clean build on 2 cores, 3.9 MB vs 23 MB of binary, which is also
//! page-in on a Lambda cold start. Credentials, region and endpoint come from the standard AWS
//! environment variables Lambda sets; `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` switch to
//! path-style addressing (a local S3 in tests).

use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use thiserror::Error;

/// Bounds a mapper download: a component is a few hundred KB, a `.cwasm` a few MB.
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;
const SIGNED_URL_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Error)]
pub enum S3Error {
    #[error("{0} is not an s3://bucket/key URI")]
    BadUri(String),
    #[error("no AWS credentials in the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")]
    NoCredentials,
    #[error("invalid S3 endpoint {endpoint}: {why}")]
    Endpoint { endpoint: String, why: String },
    #[error("GET s3://{bucket}/{key} failed: {why}")]
    Get {
        bucket: String,
        key: String,
        why: String,
    },
    #[error("s3://{bucket}/{key} answered HTTP {status}")]
    Status {
        bucket: String,
        key: String,
        status: u16,
    },
}

/// What a conditional GET found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The object still has the ETag we sent.
    NotModified,
    Object {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
}

/// `s3://bucket/key`.
pub fn parse_uri(uri: &str) -> Result<(String, String), S3Error> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| S3Error::BadUri(uri.to_owned()))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok((bucket.to_owned(), key.to_owned()))
        }
        _ => Err(S3Error::BadUri(uri.to_owned())),
    }
}

pub struct S3Client {
    agent: ureq::Agent,
    credentials: Credentials,
    endpoint: url::Url,
    style: UrlStyle,
    region: String,
}

/// The AWS credentials and region Lambda (or a test) puts in the environment; shared by the
/// S3 reader and the Secrets Manager client.
pub struct AwsEnv {
    pub key: String,
    pub secret: String,
    pub token: Option<String>,
    pub region: String,
}

impl AwsEnv {
    /// `None` without an access key and secret.
    pub fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Option<AwsEnv> {
        Some(AwsEnv {
            key: var("AWS_ACCESS_KEY_ID")?,
            secret: var("AWS_SECRET_ACCESS_KEY")?,
            token: var("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_owned()),
        })
    }
}

impl S3Client {
    /// From the environment Lambda (or a test) provides.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<S3Client, S3Error> {
        let AwsEnv {
            key,
            secret,
            token,
            region,
        } = AwsEnv::from_lookup(&var).ok_or(S3Error::NoCredentials)?;
        let credentials = match token {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        };
        let (endpoint, style) = match var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"))
        {
            Some(e) => (e, UrlStyle::Path),
            None => (
                format!("https://s3.{region}.amazonaws.com"),
                UrlStyle::VirtualHost,
            ),
        };
        let endpoint = url::Url::parse(&endpoint).map_err(|e| S3Error::Endpoint {
            endpoint: endpoint.clone(),
            why: e.to_string(),
        })?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build();
        Ok(S3Client {
            agent: config.into(),
            credentials,
            endpoint,
            style,
            region,
        })
    }

    fn bucket(&self, name: &str) -> Result<Bucket, S3Error> {
        Bucket::new(
            self.endpoint.clone(),
            self.style,
            name.to_owned(),
            self.region.clone(),
        )
        .map_err(|e| S3Error::Endpoint {
            endpoint: self.endpoint.to_string(),
            why: e.to_string(),
        })
    }

    /// GET with `If-None-Match: etag` when we have one. Blocking: call from a blocking task.
    pub fn get_if_changed(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<Fetched, S3Error> {
        let b = self.bucket(bucket)?;
        let url = b
            .get_object(Some(&self.credentials), key)
            .sign(SIGNED_URL_LIFETIME);
        let mut request = self.agent.get(url.as_str());
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        let fail = |why: String| S3Error::Get {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            why: without_signature(&why),
        };
        let mut response = request.call().map_err(|e| fail(e.to_string()))?;
        match response.status().as_u16() {
            304 => Ok(Fetched::NotModified),
            200 => {
                let etag = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let bytes = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_OBJECT_BYTES)
                    .read_to_vec()
                    .map_err(|e| fail(e.to_string()))?;
                Ok(Fetched::Object { bytes, etag })
            }
            status => Err(S3Error::Status {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                status,
            }),
        }
    }

    /// PUT an object (creating the bucket first when asked); for tests and tooling.
    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        create_bucket: bool,
    ) -> Result<(), S3Error> {
        let b = self.bucket(bucket)?;
        let fail = |why: String| S3Error::Get {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            why: without_signature(&why),
        };
        if create_bucket {
            let url = b.create_bucket(&self.credentials).sign(SIGNED_URL_LIFETIME);
            self.agent
                .put(url.as_str())
                .send_empty()
                .map_err(|e| fail(e.to_string()))?;
        }
        let url = b
            .put_object(Some(&self.credentials), key)
            .sign(SIGNED_URL_LIFETIME);
        let response = self
            .agent
            .put(url.as_str())
            .send(body)
            .map_err(|e| fail(e.to_string()))?;
        match response.status().as_u16() {
            200 => Ok(()),
            status => Err(S3Error::Status {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                status,
            }),
        }
    }
}

/// An HTTP client's error text with any URL query cut off: a presigned URL's query is a
/// credential for its lifetime, and error texts end up in log lines.
fn without_signature(why: &str) -> String {
    let mut out = String::with_capacity(why.len());
    for (i, word) in why.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.find('?') {
            Some(q) if word[q..].contains('=') => {
                out.push_str(&word[..q]);
                out.push_str("?…");
            }
            _ => out.push_str(word),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            parse_uri("s3://b/k/x.wasm").unwrap(),
            ("b".into(), "k/x.wasm".into())
        );
        for bad in ["b/k", "s3://b", "s3:///k", "s3://b/"] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_texts_never_carry_a_presigned_query() {
        let why = "bad uri: https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc: invalid";
        let clean = without_signature(why);
        assert_eq!(clean, "bad uri: https://b.s3.amazonaws.com/k?… invalid");
        assert!(!clean.contains("X-Amz"));
        assert_eq!(
            without_signature("is this a question?"),
            "is this a question?"
        );
    }
}
