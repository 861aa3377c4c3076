//! AWS calls in the JSON protocol (Secrets Manager, CloudWatch Logs): signed by `aws-sigv4`,
//! the AWS SDK's own SigV4 signer, and sent over the blocking HTTP client the S3 reader uses
//! (`ureq`), instead of the SDK's service clients: those bring their own HTTP stack and
//! runtime, which cost build time and binary size (see `s3`). Throttling and server errors
//! are retried with backoff.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::Value;
use thiserror::Error;

/// An AWS service spoken to in the JSON protocol.
#[derive(Debug)]
pub struct Service {
    /// As errors name it.
    pub name: &'static str,
    /// SigV4's service name, and the endpoint's first label.
    pub signing_name: &'static str,
    /// `X-Amz-Target` is `<prefix>.<Action>`.
    pub target_prefix: &'static str,
    /// The SDKs' endpoint override for this service (before `AWS_ENDPOINT_URL`).
    pub endpoint_env: &'static str,
    /// The request's content type: AWS JSON 1.1 for most services, 1.0 for SQS.
    pub content_type: &'static str,
}

const JSON_1_1: &str = "application/x-amz-json-1.1";

pub const SECRETS_MANAGER: Service = Service {
    name: "Secrets Manager",
    signing_name: "secretsmanager",
    target_prefix: "secretsmanager",
    endpoint_env: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    content_type: JSON_1_1,
};

pub const CLOUDWATCH_LOGS: Service = Service {
    name: "CloudWatch Logs",
    signing_name: "logs",
    target_prefix: "Logs_20140328",
    endpoint_env: "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    content_type: JSON_1_1,
};

/// SQS in its JSON protocol: the failed-event queue `replay` drains.
pub const SQS: Service = Service {
    name: "SQS",
    signing_name: "sqs",
    target_prefix: "AmazonSQS",
    endpoint_env: "AWS_ENDPOINT_URL_SQS",
    content_type: "application/x-amz-json-1.0",
};

/// Kinesis: the records a failed batch's on-failure record points at.
pub const KINESIS: Service = Service {
    name: "Kinesis",
    signing_name: "kinesis",
    target_prefix: "Kinesis_20131202",
    endpoint_env: "AWS_ENDPOINT_URL_KINESIS",
    content_type: JSON_1_1,
};

#[derive(Debug, Error)]
pub enum AwsError {
    #[error("no AWS credentials in the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")]
    NoCredentials,
    #[error("invalid {service} endpoint {endpoint}")]
    Endpoint {
        service: &'static str,
        endpoint: String,
    },
    #[error("{service} {action} failed: {why}")]
    Call {
        service: &'static str,
        action: &'static str,
        why: String,
    },
    /// Only the error's code is kept from the body: its message may quote request values.
    #[error("{service} {action} answered HTTP {status} ({code})")]
    Status {
        service: &'static str,
        action: &'static str,
        status: u16,
        code: String,
    },
}

impl AwsError {
    /// The AWS error code of a refused call (`ResourceNotFoundException`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the call may succeed later: throttled, or the service's own failure (the
    /// client has retried it already; a long job may wait longer and try again).
    pub fn retryable(&self) -> bool {
        matches!(self, AwsError::Status { status, code, .. } if retryable(*status, code))
    }
}

/// Attempts of one call, throttling and server errors included.
const ATTEMPTS: u32 = 6;
/// The first retry's wait; each next one doubles it (0.2, 0.4, 0.8, 1.6, 3.2 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Whether a failed call may succeed if made again: throttled, or the service's own error.
fn retryable(status: u16, code: &str) -> bool {
    status == 429
        || status >= 500
        || code.contains("Throttl")
        || matches!(
            code,
            "TooManyRequestsException" | "RequestLimitExceeded" | "ServiceUnavailableException"
        )
}

/// A client of one service, with the credentials and region of the environment.
pub struct AwsJsonClient {
    agent: ureq::Agent,
    credentials: Credentials,
    region: String,
    endpoint: url::Url,
    service: &'static Service,
    backoff: Duration,
}

impl AwsJsonClient {
    /// From the environment Lambda (or a test) provides.
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        service: &'static Service,
    ) -> Result<AwsJsonClient, AwsError> {
        let env = crate::s3::AwsEnv::from_lookup(&var).ok_or(AwsError::NoCredentials)?;
        let endpoint = var(service.endpoint_env)
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| {
                format!(
                    "https://{}.{}.amazonaws.com",
                    service.signing_name, env.region
                )
            });
        let bad = || AwsError::Endpoint {
            service: service.name,
            endpoint: endpoint.clone(),
        };
        let endpoint = url::Url::parse(&endpoint).map_err(|_| bad())?;
        if endpoint.host_str().is_none() {
            return Err(bad());
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(AwsJsonClient {
            agent,
            credentials: Credentials::new(env.key, env.secret, env.token, None, "environment"),
            region: env.region,
            endpoint,
            service,
            backoff: FIRST_BACKOFF,
        })
    }

    /// The first retry's wait (tests make it short).
    #[cfg(test)]
    pub(crate) fn with_backoff(mut self, backoff: Duration) -> AwsJsonClient {
        self.backoff = backoff;
        self
    }

    /// One call, retried with backoff while throttled or failing on the service's side.
    pub fn call(&self, action: &'static str, body: &Value) -> Result<Value, AwsError> {
        let body = body.to_string();
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match self.call_once(action, &body) {
                Err(AwsError::Status { status, code, .. })
                    if attempt < ATTEMPTS && retryable(status, &code) =>
                {
                    tracing::debug!(
                        service = self.service.name,
                        action,
                        status,
                        code,
                        attempt,
                        "Retrying a throttled AWS call."
                    );
                }
                other => return other,
            }
            std::thread::sleep(wait);
            wait *= 2;
            attempt += 1;
        }
    }

    /// [`call`](Self::call) on a blocking thread, for async callers (`replay`, `backfill`).
    pub async fn call_async(
        self: &std::sync::Arc<Self>,
        action: &'static str,
        body: Value,
    ) -> Result<Value, AwsError> {
        self.on_blocking_thread(action, move |c| c.call(action, &body))
            .await
    }

    /// Every item of the list `key` of a paged answer, following `nextToken`.
    pub fn pages(
        &self,
        action: &'static str,
        mut request: Value,
        key: &str,
    ) -> Result<Vec<Value>, AwsError> {
        let mut items = Vec::new();
        loop {
            let mut answer = self.call(action, &request)?;
            if let Some(list) = answer[key].as_array_mut() {
                items.append(list);
            }
            match answer["nextToken"].as_str().filter(|t| !t.is_empty()) {
                Some(token) => request["nextToken"] = Value::from(token),
                None => return Ok(items),
            }
        }
    }

    /// [`pages`](Self::pages) on a blocking thread, for async callers.
    pub async fn pages_async(
        self: &std::sync::Arc<Self>,
        action: &'static str,
        request: Value,
        key: &'static str,
    ) -> Result<Vec<Value>, AwsError> {
        self.on_blocking_thread(action, move |c| c.pages(action, request, key))
            .await
    }

    async fn on_blocking_thread<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        action: &'static str,
        work: impl FnOnce(&AwsJsonClient) -> Result<T, AwsError> + Send + 'static,
    ) -> Result<T, AwsError> {
        let client = self.clone();
        tokio::task::spawn_blocking(move || work(&client))
            .await
            .unwrap_or_else(|e| {
                Err(AwsError::Call {
                    service: self.service.name,
                    action,
                    why: format!("the call's thread stopped: {e}"),
                })
            })
    }

    fn call_once(&self, action: &'static str, body: &str) -> Result<Value, AwsError> {
        let failed = |why: String| AwsError::Call {
            service: self.service.name,
            action,
            why,
        };
        let target = format!("{}.{action}", self.service.target_prefix);
        let host = match self.endpoint.port() {
            Some(p) => format!("{}:{p}", self.endpoint.host_str().unwrap_or("")),
            None => self.endpoint.host_str().unwrap_or("").to_owned(),
        };
        let headers = [
            ("content-type", self.service.content_type),
            ("host", host.as_str()),
            ("x-amz-target", target.as_str()),
        ];
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service.signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(format!("cannot sign: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| failed(format!("cannot sign: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(format!("cannot sign: {e}")))?
            .into_parts();
        let mut request = self.agent.post(self.endpoint.as_str());
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let mut response = request
            .send(body.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| failed(e.to_string()))?;
        if status != 200 {
            return Err(AwsError::Status {
                service: self.service.name,
                action,
                status,
                code: error_code(&text),
            });
        }
        // Actions that return nothing (PutSubscriptionFilter, CreateLogGroup) may send no body.
        if text.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(&text).map_err(|e| failed(format!("not JSON: {e}")))
    }
}

/// The code of an AWS JSON error document (`__type`, without its namespace): what a log line
/// may say of a refused call.
pub fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("__type")?.as_str().map(str::to_owned))
        .map(|t| t.rsplit('#').next().unwrap_or_default().to_owned())
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 100
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        })
        .unwrap_or_else(|| "no error code".to_owned())
}

/// A scripted AWS endpoint for unit tests.
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A server on 127.0.0.1 answering each request with the next of `answers`, and the
    /// requests it read.
    pub(crate) fn server(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for (status, body) in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = vec![0u8; 16 << 10];
                let mut got = 0;
                // Headers, then the body its Content-Length announces.
                loop {
                    let n = stream.read(&mut buf[got..]).unwrap();
                    got += n;
                    let text = String::from_utf8_lossy(&buf[..got]).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if got >= end + 4 + len || n == 0 {
                            requests.push(text);
                            break;
                        }
                    }
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(reply.as_bytes()).unwrap();
            }
            requests
        });
        (url, handle)
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::server;
    use super::*;

    #[test]
    fn a_refused_call_keeps_only_the_error_code() {
        let body = r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"}"#;
        assert_eq!(error_code(body), "ResourceNotFoundException");
        let e = AwsError::Status {
            service: "Secrets Manager",
            action: "GetSecretValue",
            status: 400,
            code: error_code(body),
        };
        assert_eq!(
            e.to_string(),
            "Secrets Manager GetSecretValue answered HTTP 400 (ResourceNotFoundException)"
        );
        assert_eq!(error_code("<html>gateway</html>"), "no error code");
        assert_eq!(error_code(r#"{"__type":"a b"}"#), "no error code");
    }

    #[test]
    fn what_is_retried() {
        assert!(retryable(400, "ThrottlingException"));
        assert!(retryable(429, "no error code"));
        assert!(retryable(503, "ServiceUnavailableException"));
        // Too many subscription filters on a group: asking again changes nothing.
        assert!(!retryable(400, "LimitExceededException"));
        assert!(!retryable(400, "ResourceNotFoundException"));
    }

    fn client(url: &str) -> AwsJsonClient {
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            ("AWS_SESSION_TOKEN", "session-token"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", url),
        ];
        let mut c = AwsJsonClient::from_env(
            |k| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            },
            &CLOUDWATCH_LOGS,
        )
        .unwrap();
        c.backoff = Duration::from_millis(1);
        c
    }

    #[test]
    fn signed_and_retried_while_throttled() {
        let throttled = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        let (url, server) = server(vec![
            (400, throttled),
            (400, throttled),
            (200, r#"{"ok":1}"#),
        ]);
        let answer = client(&url)
            .call("DescribeLogGroups", &serde_json::json!({"limit": 1}))
            .unwrap();
        assert_eq!(answer, serde_json::json!({"ok": 1}));
        let requests = server.join().unwrap();
        assert_eq!(requests.len(), 3);
        let first = requests[0].to_ascii_lowercase();
        assert!(first.starts_with("post / http/1.1"), "{first}");
        assert!(
            first.contains("x-amz-target: logs_20140328.describeloggroups"),
            "{first}"
        );
        assert!(
            first.contains("authorization: aws4-hmac-sha256 credential=akidexample/")
                && first.contains("/eu-west-1/logs/aws4_request"),
            "{first}"
        );
        assert!(
            first.contains("x-amz-security-token: session-token"),
            "{first}"
        );
        assert!(first.ends_with(r#"{"limit":1}"#), "{first}");
    }

    #[test]
    fn a_refusal_is_not_retried_and_names_its_code() {
        let (url, server) = server(vec![(
            400,
            r#"{"__type":"com.amazonaws.logs#LimitExceededException","message":"Resource limit exceeded."}"#,
        )]);
        let e = client(&url)
            .call("PutSubscriptionFilter", &serde_json::json!({}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CloudWatch Logs PutSubscriptionFilter answered HTTP 400 (LimitExceededException)"
        );
        assert_eq!(server.join().unwrap().len(), 1);
    }
}
