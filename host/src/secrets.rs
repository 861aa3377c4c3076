//! Reads the WhaTap license from AWS Secrets Manager at start-up (`WHATAP_LICENSE_SECRET_ARN`),
//! so it need not sit in the function's environment: one `GetSecretValue` call ([`crate::aws`]).

use thiserror::Error;

use crate::aws::{AwsError, AwsJsonClient, SECRETS_MANAGER};

#[derive(Debug, Error)]
pub enum SecretError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("the secret has no SecretString (binary secrets are not supported)")]
    NotAString,
}

pub struct SecretsClient {
    client: AwsJsonClient,
}

impl SecretsClient {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<SecretsClient, SecretError> {
        Ok(SecretsClient {
            client: AwsJsonClient::from_env(var, &SECRETS_MANAGER)?,
        })
    }

    /// The secret's string. A JSON object secret is searched for a `license` or
    /// `ProjectAccessKey` key, as the console's key/value editor stores it.
    pub fn license(&self, secret_id: &str) -> Result<String, SecretError> {
        let answer = self.client.call(
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
