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
