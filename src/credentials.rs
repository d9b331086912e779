//! AWS credentials for the run: GitHub OIDC → sts:AssumeRoleWithWebIdentity where the runner offers
//! it, sts:AssumeRole from ambient credentials where it does not (act, self-hosted), or the ambient
//! chain as it is. Every secret is masked before anything else can print it.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aws_config::SdkConfig;
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use serde::Deserialize;

use crate::aws::call_failed;
use crate::config::AwsSettings;
use crate::gha::Gha;
use crate::retry::Backoff;

/// Which way the credentials were obtained, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    WebIdentity,
    AssumeRole,
    Ambient,
}

/// The runner's OIDC token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL` / `_TOKEN`).
pub(crate) struct OidcEndpoint {
    pub(crate) url: String,
    pub(crate) bearer: String,
}

/// What the environment says about the runner.
pub(crate) struct Runner {
    pub(crate) oidc: Option<OidcEndpoint>,
    /// In GitHub Actions proper (not act): a missing OIDC endpoint is a missing permission.
    pub(crate) github_actions: bool,
    pub(crate) act: bool,
}

impl Runner {
    pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| var(k).filter(|v| !v.is_empty());
        let oidc = match (non_empty("ACTIONS_ID_TOKEN_REQUEST_URL"), non_empty("ACTIONS_ID_TOKEN_REQUEST_TOKEN")) {
            (Some(url), Some(bearer)) => Some(OidcEndpoint { url, bearer }),
            _ => None,
        };
        let act = non_empty("ACT").is_some_and(|v| v == "true");
        Runner { oidc, github_actions: non_empty("GITHUB_ACTIONS").is_some_and(|v| v == "true") && !act, act }
    }
}

/// Credentials for every client of the run; `None` means the ambient chain as it is.
pub(crate) async fn obtain(
    settings: &AwsSettings,
    ambient: &SdkConfig,
    runner: &Runner,
    gha: &Gha,
) -> Result<(Path, Option<SharedCredentialsProvider>)> {
    let Some(role) = &settings.role_to_assume else {
        gha.info("credentials: the ambient AWS credentials (no role-to-assume)");
        return Ok((Path::Ambient, None));
    };
    let sts = aws_sdk_sts::Client::new(ambient);
    let duration = i32::try_from(settings.role_duration.as_secs()).unwrap_or(3600);
    let response = match &runner.oidc {
        Some(endpoint) => {
            gha.mask(&endpoint.bearer);
            let token = id_token(endpoint, &settings.audience).await?;
            gha.mask(&token);
            gha.info(&format!(
                "credentials: GitHub OIDC token (audience {}) → sts:AssumeRoleWithWebIdentity {role}",
                settings.audience
            ));
            let out = sts
                .assume_role_with_web_identity()
                .role_arn(role)
                .role_session_name(&settings.role_session_name)
                .web_identity_token(&token)
                .duration_seconds(duration)
                .send()
                .await
                .map_err(|e| call_failed("STS AssumeRoleWithWebIdentity", &e))
                .with_context(|| {
                    format!(
                        "could not assume {role} with the GitHub OIDC token: check that the role's trust policy allows the provider token.actions.githubusercontent.com, audience `{}`, and this repository's subject (repo:<owner>/<repo>:...)",
                        settings.audience
                    )
                })?;
            (Path::WebIdentity, out.credentials().cloned())
        }
        None if runner.github_actions => bail!(
            "role-to-assume is set but the runner offers no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set): is the `permissions: id-token: write` permission missing from the workflow or job? (Pull requests from forks never get it.)"
        ),
        None => {
            let why = if runner.act { "act run, no OIDC" } else { "no OIDC" };
            gha.info(&format!("credentials: {why}: the ambient credentials → sts:AssumeRole {role}"));
            let out = sts
                .assume_role()
                .role_arn(role)
                .role_session_name(&settings.role_session_name)
                .duration_seconds(duration)
                .send()
                .await
                .map_err(|e| call_failed("STS AssumeRole", &e))
                .with_context(|| {
                    format!("could not assume {role} with the ambient credentials: are AWS credentials configured (AWS_ACCESS_KEY_ID, a profile), and may they sts:AssumeRole it?")
                })?;
            (Path::AssumeRole, out.credentials().cloned())
        }
    };
    let (path, credentials) = response;
    let c = credentials.ok_or_else(|| anyhow!("STS answered without credentials"))?;
    // Masked before anything could print them.
    gha.mask(c.access_key_id());
    gha.mask(c.secret_access_key());
    gha.mask(c.session_token());
    let provider = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        std::time::SystemTime::try_from(*c.expiration()).ok(),
        "ecs-deploy-action",
    );
    Ok((path, Some(SharedCredentialsProvider::new(provider))))
}

#[derive(Deserialize)]
struct TokenResponse {
    value: String,
}

/// GET `<url>&audience=<aud>` with the runner's bearer token; retried on 5xx and network errors.
async fn id_token(endpoint: &OidcEndpoint, audience: &str) -> Result<String> {
    let mut url = reqwest::Url::parse(&endpoint.url).context("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL")?;
    url.query_pairs_mut().append_pair("audience", audience);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5), 4);
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
