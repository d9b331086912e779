//! An assumed role's session that lasts the whole run: the credentials are kept until `margin`
//! before they expire, then the role is assumed again (with a fresh GitHub OIDC token on that path),
//! so a canary longer than `role-duration-seconds` keeps working, its abort included. Every client
//! asks here before each request (the SDK's own cache is off: this is the cache); a refresh runs in
//! the background, so no call waits on it, and a failed one does not cut the run off while the held
//! session is still valid.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};
use aws_sdk_sts::config::Credentials;
use tokio::sync::Mutex;

use super::oidc::{self, OidcEndpoint};
use crate::aws::call_failed;
use crate::gha::Gha;
use crate::retry;

/// Refresh when less than this is left of a session (STS sessions last 15 minutes at least).
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How the role is assumed: with the runner's OIDC token, or with the ambient credentials.
pub(crate) enum Via {
    WebIdentity { endpoint: OidcEndpoint, audience: String },
    AssumeRole,
}

/// Held credentials with less than this left are not handed out: a call signed with them could
/// outlast them (each call has a 30 s deadline).
const USABLE_FLOOR: Duration = Duration::from_secs(60);

/// The session, shared with its background refresh.
pub(crate) struct RoleSession {
    inner: Arc<Inner>,
}

struct Inner {
    sts: aws_sdk_sts::Client,
    role: String,
    session_name: String,
    duration: Duration,
    via: Via,
    margin: Duration,
    gha: Gha,
    /// What calls are signed with; never held across an await.
    current: StdMutex<Option<Credentials>>,
    /// One assume at a time.
    assuming: Mutex<()>,
    /// A background refresh is under way.
    refreshing: AtomicBool,
    assumed: AtomicU32,
}

impl std::fmt::Debug for RoleSession {
    // No secret here: neither the credentials nor the runner's bearer token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        f.debug_struct("RoleSession").field("role", &inner.role).field("margin", &inner.margin).finish_non_exhaustive()
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
        let inner = Inner {
            sts,
            role: role.to_string(),
            session_name: settings.role_session_name.clone(),
            duration: settings.role_duration,
            via,
            margin,
            gha,
            current: StdMutex::new(None),
            assuming: Mutex::new(()),
            refreshing: AtomicBool::new(false),
            assumed: AtomicU32::new(0),
        };
        RoleSession { inner: Arc::new(inner) }
    }

    /// The session's credentials. Held ones are handed out at once while they are valid; within
    /// `margin` of their expiry a refresh starts in the background (retried, warned about) and calls
    /// go on with them; only with none held, or too close to expiry to sign a call, does a call wait
    /// for the role to be assumed, and fail if it cannot be.
    pub(crate) async fn credentials(&self) -> Result<Credentials> {
        let now = SystemTime::now();
        match self.inner.held() {
            Some(held) if lasts(&held, now + self.inner.margin) => Ok(held),
            Some(held) if lasts(&held, now + USABLE_FLOOR) => {
                Inner::refresh_in_background(&self.inner);
                Ok(held)
            }
            _ => self.inner.assume_now().await,
        }
    }
}

/// `c` is valid at least until `until` (credentials without an expiry always are).
fn lasts(c: &Credentials, until: SystemTime) -> bool {
    c.expiry().is_none_or(|expiry| until < expiry)
}

fn until_text(c: &Credentials) -> String {
    c.expiry()
        .and_then(|t| aws_smithy_types::DateTime::from(t).fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .unwrap_or_else(|| "an unknown time".into())
}

impl Inner {
    fn held(&self) -> Option<Credentials> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Assumes the role (unless another caller just did) and keeps the new credentials.
    async fn assume_now(&self) -> Result<Credentials> {
        let _one = self.assuming.lock().await;
        if let Some(held) = self.held()
            && lasts(&held, SystemTime::now() + self.margin)
        {
            return Ok(held);
        }
        let fresh = self.assume().await?;
        if self.assumed.fetch_add(1, Ordering::Relaxed) > 0 {
            let until = until_text(&fresh);
            self.gha.info(&format!("credentials: refreshed the session of {} (valid until {until})", self.role));
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }

    /// Starts one refresh in the background unless one runs: retried with backoff while the held
    /// credentials are valid, each failure a warning that says until when the run can go on.
    fn refresh_in_background(inner: &Arc<Inner>) {
        if inner.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            let mut backoff = retry::session_refresh();
            loop {
                let error = match inner.assume_now().await {
                    Ok(_) => break,
                    Err(e) => e,
                };
                let Some(held) = inner.held().filter(|h| lasts(h, SystemTime::now())) else {
                    // Expired: the next call assumes the role itself and fails with the reason.
                    break;
                };
                inner.gha.warning(&format!(
                    "credentials: could not refresh the session of {} ({error:#}); the current one is valid until \
                     {}: trying again",
                    inner.role,
                    until_text(&held)
                ));
                crate::clock::sleep(backoff.next().unwrap_or(Duration::from_secs(30))).await;
            }
            inner.refreshing.store(false, Ordering::SeqCst);
        });
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
                    .map_err(|e| {
                        let failed = call_failed("STS AssumeRoleWithWebIdentity", &e);
                        // Refused by the trust policy: say what the token claims and what would admit it.
                        match oidc::claims(&token).filter(|_| crate::aws::is_access_denied(&e)) {
                            Some(claims) => failed.context(claims.hint()),
                            None => failed,
                        }
                    })
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
