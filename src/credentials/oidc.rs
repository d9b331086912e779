//! The GitHub OIDC token for the job, from the runner's token endpoint
//! (`ACTIONS_ID_TOKEN_REQUEST_URL` / `_TOKEN`), asked again at every session refresh: the token
//! itself lives only minutes.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::retry;

/// The runner's OIDC token endpoint.
pub(crate) struct OidcEndpoint {
    pub(crate) url: String,
    pub(crate) bearer: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    value: String,
}

/// GET `<url>&audience=<aud>` with the runner's bearer token; retried on 5xx and network errors.
pub(crate) async fn id_token(endpoint: &OidcEndpoint, audience: &str) -> Result<String> {
    let mut url = reqwest::Url::parse(&endpoint.url).context("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL")?;
    url.query_pairs_mut().append_pair("audience", audience);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;
    let mut backoff = retry::token_request();
    loop {
        let result = client.get(url.clone()).bearer_auth(&endpoint.bearer).send().await;
        let reason = match result {
            Ok(r) if r.status().is_success() => {
                let body: TokenResponse =
                    r.json().await.context("the GitHub OIDC token endpoint answered without a token (`value`)")?;
                return Ok(body.value);
            }
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                format!("the GitHub OIDC token endpoint answered {}", r.status())
            }
            Ok(r) => bail!(
                "the GitHub OIDC token endpoint refused the request ({}): is `permissions: id-token: write` granted to this job?",
                r.status()
            ),
            Err(e) => format!("could not reach the GitHub OIDC token endpoint: {e}"),
        };
        match backoff.next() {
            Some(wait) => crate::clock::sleep(wait).await,
            None => bail!("{reason} (gave up after {} attempts)", backoff.attempts()),
        }
    }
}

/// The claims of the job's token that a role's trust policy matches, for the refusal's message
/// (never the token itself: its signature makes it a credential).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Claims {
    sub: String,
    #[serde(default)]
    aud: serde_json::Value,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
}

/// The token's claims, read without checking its signature (STS did that): None when it is not a JWT.
pub(crate) fn claims(token: &str) -> Option<Claims> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&json).ok()
}

impl Claims {
    /// What the token says and the trust policy that would admit it.
    pub(crate) fn hint(&self) -> String {
        let aud = match &self.aud {
            serde_json::Value::String(one) => one.clone(),
            other => other.to_string(),
        };
        let mut said = format!("the job's token has sub `{}`, aud `{aud}`", self.sub);
        if let Some(repository) = &self.repository {
            said.push_str(&format!(", repository `{repository}`"));
            let subject = match (&self.environment, &self.git_ref) {
                (Some(environment), _) => format!("--environment {environment}"),
                (None, Some(git_ref)) => format!("--ref {git_ref}"),
                (None, None) => "--ref <branch>".to_string(),
            };
            said.push_str(&format!(
                "; a trust policy that admits it: ecs-deploy-action iam-policy --trust --repository {repository} {subject}"
            ));
        }
        said
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn token(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.{}", b64(r#"{"alg":"RS256"}"#), b64(payload), b64("signature"))
    }

    /// moto does not evaluate a role's trust policy on AssumeRoleWithWebIdentity, so the stack never
    /// refuses a token: the message is tested here, from the token alone.
    #[test]
    fn a_refused_token_is_explained_by_its_claims_with_the_trust_policy_that_admits_it() {
        let t = token(
            r#"{"sub":"repo:octo/app:environment:production","aud":"sts.amazonaws.com","repository":"octo/app","environment":"production","ref":"refs/heads/main"}"#,
        );
        assert_eq!(
            claims(&t).unwrap().hint(),
            "the job's token has sub `repo:octo/app:environment:production`, aud `sts.amazonaws.com`, repository \
             `octo/app`; a trust policy that admits it: ecs-deploy-action iam-policy --trust --repository octo/app \
             --environment production"
        );
        let on_a_branch = token(
            r#"{"sub":"repo:octo/app:ref:refs/heads/main","aud":["a","b"],"repository":"octo/app","ref":"refs/heads/main"}"#,
        );
        let hint = claims(&on_a_branch).unwrap().hint();
        assert!(hint.contains(r#"aud `["a","b"]`"#) && hint.ends_with("--ref refs/heads/main"), "{hint}");
        assert!(!hint.contains("signature"), "nothing of the token but its claims");
        assert_eq!(claims("not-a-jwt"), None);
    }
}
