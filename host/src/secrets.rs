//! Reads the WhaTap license from AWS Secrets Manager at start-up (`WHATAP_LICENSE_SECRET_ARN`),
//! so it need not sit in the function's environment. One SigV4-signed `GetSecretValue` call
//! over the same blocking HTTP client as the S3 reader, instead of the AWS SDK (build time and
//! binary size; see `s3`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("no AWS credentials in the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")]
    NoCredentials,
    #[error("invalid Secrets Manager endpoint {0}")]
    Endpoint(String),
    #[error("Secrets Manager {action} failed: {why}")]
    Call { action: &'static str, why: String },
    /// Only the error's code is kept from the body: its message may quote request values.
    #[error("Secrets Manager {action} answered HTTP {status} ({code})")]
    Status {
        action: &'static str,
        status: u16,
        code: String,
    },
    #[error("the secret has no SecretString (binary secrets are not supported)")]
    NotAString,
}

pub struct SecretsClient {
    agent: ureq::Agent,
    key: String,
    secret: String,
    token: Option<String>,
    region: String,
    endpoint: url::Url,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
fn amz_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

impl SecretsClient {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<SecretsClient, SecretError> {
        let crate::s3::AwsEnv {
            key,
            secret,
            token,
            region,
        } = crate::s3::AwsEnv::from_lookup(&var).ok_or(SecretError::NoCredentials)?;
        let endpoint = var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
        let endpoint =
            url::Url::parse(&endpoint).map_err(|_| SecretError::Endpoint(endpoint.clone()))?;
        if endpoint.host_str().is_none() {
            return Err(SecretError::Endpoint(endpoint.to_string()));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(SecretsClient {
            agent,
            key,
            secret,
            token,
            region,
            endpoint,
        })
    }

    /// One Secrets Manager JSON call, SigV4-signed.
    pub fn call(
        &self,
        action: &'static str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, SecretError> {
        let body = body.to_string();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let date = amz_date(now);
        let day = &date[..8];
        let host = match self.endpoint.port() {
            Some(p) => format!("{}:{p}", self.endpoint.host_str().unwrap_or("")),
            None => self.endpoint.host_str().unwrap_or("").to_owned(),
        };
        let target = format!("secretsmanager.{action}");
        let mut headers = vec![
            ("content-type", "application/x-amz-json-1.1".to_owned()),
            ("host", host),
            ("x-amz-date", date.clone()),
        ];
        if let Some(t) = &self.token {
            headers.push(("x-amz-security-token", t.clone()));
        }
        headers.push(("x-amz-target", target));
        let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
        let signed = signed.join(";");
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let canonical = format!(
            "POST\n/\n\n{canonical_headers}\n{signed}\n{}",
            hex(&Sha256::digest(body.as_bytes()))
        );
        let scope = format!("{day}/{}/secretsmanager/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut k = hmac(format!("AWS4{}", self.secret).as_bytes(), day);
        for part in [self.region.as_str(), "secretsmanager", "aws4_request"] {
            k = hmac(&k, part);
        }
        let signature = hex(&hmac(&k, &to_sign));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            self.key
        );
        let mut request = self.agent.post(self.endpoint.as_str());
        for (k, v) in &headers {
            if *k != "host" {
                request = request.header(*k, v);
            }
        }
        let mut response = request
            .header("authorization", &authorization)
            .send(body.as_bytes())
            .map_err(|e| SecretError::Call {
                action,
                why: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| SecretError::Call {
                action,
                why: e.to_string(),
            })?;
        if status != 200 {
            return Err(SecretError::Status {
                action,
                status,
                code: error_code(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| SecretError::Call {
            action,
            why: format!("not JSON: {e}"),
        })
    }

    /// The secret's string. A JSON object secret is searched for a `license` or
    /// `ProjectAccessKey` key, as the console's key/value editor stores it.
    pub fn license(&self, secret_id: &str) -> Result<String, SecretError> {
        let answer = self.call(
            "GetSecretValue",
            &serde_json::json!({ "SecretId": secret_id }),
        )?;
        let value = answer
            .get("SecretString")
            .and_then(|v| v.as_str())
            .ok_or(SecretError::NotAString)?;
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(value)
        {
            for key in ["license", "ProjectAccessKey", "WHATAP_LICENSE"] {
                if let Some(v) = map.get(key).and_then(|v| v.as_str()) {
                    return Ok(v.to_owned());
                }
            }
        }
        Ok(value.trim().to_owned())
    }
}

/// The code of an AWS JSON error document (`__type`, without its namespace): what a log line
/// may say of a refused call.
fn error_code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_signing_key_match_the_sigv4_example() {
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        // AWS's documented example signing key (General Reference, "Examples of how to derive a
        // signing key"): secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let mut k = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            k = hmac(&k, part);
        }
        assert_eq!(
            hex(&k),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn a_refused_call_keeps_only_the_error_code() {
        let body = r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"}"#;
        assert_eq!(error_code(body), "ResourceNotFoundException");
        let e = SecretError::Status {
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
}
