//! An assumed role's session that lasts the whole run: the credentials are kept until `margin`
//! before they expire, then the role is assumed again (with a fresh GitHub OIDC token on that path),
//! so a canary longer than `role-duration-seconds` keeps working, its abort included. Every client
//! asks here before each request (the SDK's own cache is off: this is the cache).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};
use aws_sdk_sts::config::Credentials;
use tokio::sync::Mutex;

use super::oidc::{self, OidcEndpoint};
use crate::aws::call_failed;
use crate::gha::Gha;

/// Refresh when less than this is left of a session (STS sessions last 15 minutes at least).
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How the role is assumed: with the runner's OIDC token, or with the ambient credentials.
pub(crate) enum Via {
    WebIdentity { endpoint: OidcEndpoint, audience: String },
    AssumeRole,
}

pub(crate) struct RoleSession {
    sts: aws_sdk_sts::Client,
    role: String,
    session_name: String,
    duration: Duration,
    via: Via,
    margin: Duration,
    gha: Gha,
    current: Mutex<Option<Credentials>>,
    assumed: AtomicU32,
}

impl std::fmt::Debug for RoleSession {
    // No secret here: neither the credentials nor the runner's bearer token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleSession").field("role", &self.role).field("margin", &self.margin).finish_non_exhaustive()
    }
}

impl RoleSession {
    pub(crate) fn new(
        sts: aws_sdk_sts::Client,
        settings: &crate::config::AwsSettings,
        role: &str,
        via: Via,
        margin: Duration,
        gha: Gha,
    ) -> Self {
        RoleSession {
            sts,
            role: role.to_string(),
            session_name: settings.role_session_name.clone(),
            duration: settings.role_duration,
            via,
            margin,
            gha,
            current: Mutex::new(None),
            assumed: AtomicU32::new(0),
        }
    }

    /// The session's credentials, assumed anew when none are held or the held ones are within
    /// `margin` of their expiry.
    pub(crate) async fn credentials(&self) -> Result<Credentials> {
        let mut current = self.current.lock().await;
        if let Some(held) = current.as_ref()
            && held.expiry().is_none_or(|expiry| SystemTime::now() + self.margin < expiry)
        {
            return Ok(held.clone());
        }
        let fresh = self.assume().await?;
        let n = self.assumed.fetch_add(1, Ordering::Relaxed);
        if n > 0 {
            let until = fresh
                .expiry()
                .and_then(|t| {
                    aws_smithy_types::DateTime::from(t).fmt(aws_smithy_types::date_time::Format::DateTime).ok()
                })
                .unwrap_or_else(|| "an unknown time".into());
            self.gha.info(&format!("credentials: refreshed the session of {} (valid until {until})", self.role));
        }
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    async fn assume(&self) -> Result<Credentials> {
        let duration = i32::try_from(self.duration.as_secs()).unwrap_or(3600);
        let (role, name) = (&self.role, &self.session_name);
        let c = match &self.via {
            Via::WebIdentity { endpoint, audience } => {
                let token = oidc::id_token(endpoint, audience).await?;
                self.gha.mask(&token);
                let out = self
                    .sts
                    .assume_role_with_web_identity()
                    .role_arn(role)
                    .role_session_name(name)
                    .web_identity_token(&token)
                    .duration_seconds(duration)
                    .send()
                    .await
                    .map_err(|e| call_failed("STS AssumeRoleWithWebIdentity", &e))
                    .with_context(|| {
                        format!(
                            "could not assume {role} with the GitHub OIDC token: check that the role's trust policy allows the provider token.actions.githubusercontent.com, audience `{audience}`, and this repository's subject (repo:<owner>/<repo>:...)"
                        )
                    })?;
                out.credentials().cloned()
            }
            Via::AssumeRole => {
                let out = self
                    .sts
                    .assume_role()
                    .role_arn(role)
                    .role_session_name(name)
                    .duration_seconds(duration)
                    .send()
                    .await
                    .map_err(|e| call_failed("STS AssumeRole", &e))
                    .with_context(|| {
                        format!("could not assume {role} with the ambient credentials: are AWS credentials configured (AWS_ACCESS_KEY_ID, a profile), and may they sts:AssumeRole it?")
                    })?;
                out.credentials().cloned()
            }
        };
        let c = c.ok_or_else(|| anyhow!("STS answered without credentials"))?;
        // Masked before anything could print them.
        self.gha.mask(c.access_key_id());
        self.gha.mask(c.secret_access_key());
        self.gha.mask(c.session_token());
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            SystemTime::try_from(*c.expiration()).ok(),
            "ecs-deploy-action",
        ))
    }
}

impl ProvideCredentials for RoleSession {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.credentials().await.map_err(|e| CredentialsError::provider_error(format!("{e:#}")))
        })
    }
}
