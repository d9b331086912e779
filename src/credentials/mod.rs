//! AWS credentials for the run: GitHub OIDC → sts:AssumeRoleWithWebIdentity where the runner offers
//! it, sts:AssumeRole from ambient credentials where it does not (act, self-hosted), or the ambient
//! chain as it is. An assumed role's session is refreshed before it expires (`session`); keys that
//! cannot be refreshed must outlast the deploy (`check_lifetime`). Every secret is masked before
//! anything else can print it.

mod oidc;
mod session;

use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use aws_config::SdkConfig;
use aws_sdk_sts::config::SharedCredentialsProvider;
use aws_smithy_types::date_time::{DateTime, Format};

use crate::config::AwsSettings;
use crate::config::duration;
use crate::failure::Refused;
use crate::gha::Gha;
use oidc::OidcEndpoint;
use session::{REFRESH_MARGIN, RoleSession, Via};

/// Which way the credentials were obtained, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    WebIdentity,
    AssumeRole,
    Ambient,
}

/// What the environment says about the runner.
pub(crate) struct Runner {
    pub(crate) oidc: Option<OidcEndpoint>,
    /// In GitHub Actions proper (not act): a missing OIDC endpoint is a missing permission.
    pub(crate) github_actions: bool,
    pub(crate) act: bool,
    /// `ECS_DEPLOY_TEST_REFRESH_MARGIN` (tests only): refresh a session when less than this is
    /// left, instead of 5 minutes, so a short run outlives its session.
    pub(crate) refresh_margin: Duration,
}

impl Runner {
    pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| var(k).filter(|v| !v.is_empty());
        let oidc = match (non_empty("ACTIONS_ID_TOKEN_REQUEST_URL"), non_empty("ACTIONS_ID_TOKEN_REQUEST_TOKEN")) {
            (Some(url), Some(bearer)) => Some(OidcEndpoint { url, bearer }),
            _ => None,
        };
        let act = non_empty("ACT").is_some_and(|v| v == "true");
        let refresh_margin = non_empty("ECS_DEPLOY_TEST_REFRESH_MARGIN")
            .and_then(|v| duration::parse(&v).ok())
            .unwrap_or(REFRESH_MARGIN);
        Runner {
            oidc,
            github_actions: non_empty("GITHUB_ACTIONS").is_some_and(|v| v == "true") && !act,
            act,
            refresh_margin,
        }
    }
}

/// Credentials for every client of the run; `None` means the ambient chain as it is.
pub(crate) async fn obtain(
    settings: &AwsSettings,
    ambient: &SdkConfig,
    runner: Runner,
    gha: &Gha,
) -> Result<(Path, Option<SharedCredentialsProvider>)> {
    let Some(role) = &settings.role_to_assume else {
        gha.info("credentials: the ambient AWS credentials (no role-to-assume)");
        return Ok((Path::Ambient, None));
    };
    let (path, via) = match runner.oidc {
        Some(endpoint) => {
            gha.mask(&endpoint.bearer);
            gha.info(&format!(
                "credentials: GitHub OIDC token (audience {}) → sts:AssumeRoleWithWebIdentity {role}",
                settings.audience
            ));
            (Path::WebIdentity, Via::WebIdentity { endpoint, audience: settings.audience.clone() })
        }
        None if runner.github_actions => bail!(
            "role-to-assume is set but the runner offers no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set): is the `permissions: id-token: write` permission missing from the workflow or job? (Pull requests from forks never get it.)"
        ),
        None => {
            let why = if runner.act { "act run, no OIDC" } else { "no OIDC" };
            gha.info(&format!("credentials: {why}: the ambient credentials → sts:AssumeRole {role}"));
            (Path::AssumeRole, Via::AssumeRole)
        }
    };
    let sts = aws_sdk_sts::Client::new(ambient);
    let session = RoleSession::new(sts, settings, role, via, runner.refresh_margin, gha.clone());
    // Assumed once now, so that a refused role stops the run before anything else.
    session.credentials().await?;
    Ok((path, Some(SharedCredentialsProvider::new(session))))
}

/// Refuses, at plan time, a deploy that can outlast credentials nobody can refresh: temporary keys
/// in the environment (`AWS_SESSION_TOKEN`) whose expiry is known (`AWS_CREDENTIAL_EXPIRATION`, as
/// `aws configure export-credentials` writes it). Unknown expiry is a warning. The same keys bound a
/// role assumed with them (no OIDC): each refresh of its session is made with them. A role assumed
/// with the OIDC token (refreshed by `session`) and the ambient chain's profile, SSO, container and
/// instance credentials (refreshed by the SDK) pass.
pub(crate) fn check_lifetime(
    path: Path,
    var: impl Fn(&str) -> Option<String>,
    worst_case: Duration,
    gha: &Gha,
) -> Result<()> {
    let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    if path == Path::WebIdentity || set("AWS_ACCESS_KEY_ID").is_none() || set("AWS_SESSION_TOKEN").is_none() {
        return Ok(());
    }
    let whose = if path == Path::AssumeRole {
        ", and the role-to-assume session is refreshed with them (no OIDC token here)"
    } else {
        ""
    };
    let at_most = duration::format(worst_case);
    let Some(text) = set("AWS_CREDENTIAL_EXPIRATION") else {
        gha.warning(&format!(
            "the AWS credentials are temporary keys in the environment (AWS_SESSION_TOKEN), which this action \
             cannot refresh{whose}, and their expiry is unknown: if this deploy (at most {at_most}) outlives them, every \
             call fails, the abort's included. Prefer `role-to-assume`, whose session is refreshed during the run"
        ));
        return Ok(());
    };
    let expiry = DateTime::from_str(text.trim(), Format::DateTime)
        .ok()
        .and_then(|t| SystemTime::try_from(t).ok())
        .ok_or_else(|| anyhow::anyhow!("AWS_CREDENTIAL_EXPIRATION `{text}` is not an RFC 3339 time"))?;
    let left = expiry.duration_since(SystemTime::now()).unwrap_or_default();
    if left < worst_case {
        return Err(Refused(format!(
            "the AWS credentials in the environment expire at {} (in {}), and this action cannot refresh them{whose}, but \
             this deploy can take up to {at_most} (every wait at wait-timeout, then an abort): an expired session \
             mid-canary fails every gate and every undo. Use `role-to-assume` (its session is refreshed during the \
             run), or credentials that last longer, or a shorter wait-timeout",
            text.trim(),
            duration::format(Duration::from_secs(left.as_secs()))
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        move |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
    }

    fn in_minutes(m: u64) -> String {
        let t = SystemTime::now() + Duration::from_secs(m * 60);
        DateTime::from(t).fmt(Format::DateTime).unwrap()
    }

    #[test]
    fn static_keys_that_expire_before_the_worst_case_are_refused_at_plan_time() {
        let gha = Gha::new(false, std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new())), None, None);
        let keys = |expiry: String| {
            env(&[
                ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE".into()),
                ("AWS_SESSION_TOKEN", "token".into()),
                ("AWS_CREDENTIAL_EXPIRATION", expiry),
            ])
        };
        let hour = Duration::from_secs(3600);
        let refused = check_lifetime(Path::Ambient, keys(in_minutes(20)), hour, &gha).unwrap_err();
        assert!(refused.is::<Refused>());
        let text = refused.to_string();
        assert!(text.contains("(in 19m5") || text.contains("(in 20m") || text.contains("(in 19m"), "{text}");
        assert!(text.contains("can take up to 1h (every wait at wait-timeout, then an abort)"), "{text}");
        assert!(check_lifetime(Path::Ambient, keys(in_minutes(90)), hour, &gha).is_ok());
        // A role assumed with those keys is refreshed with them: their expiry bounds the deploy too.
        let refused = check_lifetime(Path::AssumeRole, keys(in_minutes(20)), hour, &gha).unwrap_err();
        assert!(refused.to_string().contains("the role-to-assume session is refreshed with them"), "{refused}");
        assert!(check_lifetime(Path::AssumeRole, keys(in_minutes(90)), hour, &gha).is_ok());
        // With the OIDC token, the ambient keys play no part.
        assert!(check_lifetime(Path::WebIdentity, keys(in_minutes(20)), hour, &gha).is_ok());
        // Long-term keys (no session token) do not expire.
        assert!(check_lifetime(Path::Ambient, env(&[("AWS_ACCESS_KEY_ID", "AKIA".into())]), hour, &gha).is_ok());
        let bad = check_lifetime(Path::Ambient, keys("tomorrow".into()), hour, &gha).unwrap_err();
        assert!(bad.to_string().contains("not an RFC 3339 time"), "{bad}");
    }
}
