//! The GitHub REST calls behind the report, through octocrab: which pull requests a commit belongs
//! to, this service's comment (found by its hidden marker, created or edited in place), and
//! Deployments with their statuses. Errors carry the permission a 403 points at.

use std::time::Duration;

use anyhow::{Result, anyhow};
use octocrab::Octocrab;
use serde::Deserialize;
use serde_json::json;

use crate::secret::Secret;

pub(crate) struct GitHub {
    client: Octocrab,
    /// `owner/name`
    repo: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Comment {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) body: Option<String>,
    pub(crate) html_url: String,
    #[serde(default)]
    pub(crate) user: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct User {
    pub(crate) login: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    state: String,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

const PAGE: usize = 100;

impl GitHub {
    /// `api_url` is `GITHUB_API_URL` (tests point it at a local server).
    pub(crate) fn new(api_url: &str, token: &Secret, repo: &str) -> Result<Self> {
        let client = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| anyhow!("GITHUB_API_URL `{api_url}` is not a URL: {e}"))?
            .personal_token(token.expose().to_string())
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(20)))
            .build()
            .map_err(|e| anyhow!("could not set up the GitHub client: {e}"))?;
        Ok(GitHub { client, repo: repo.to_string() })
    }

    /// Open pull requests that contain `sha` (for push events).
    pub(crate) async fn pulls_for_commit(&self, sha: &str) -> Result<Vec<u64>, octocrab::Error> {
        let pulls: Vec<Pull> =
            self.client.get(format!("/repos/{}/commits/{sha}/pulls", self.repo), None::<&()>).await?;
        Ok(pulls.into_iter().filter(|p| p.state == "open").map(|p| p.number).collect())
    }

    /// The token's own login, where the token may ask (a personal token); None for the Actions token.
    pub(crate) async fn me(&self) -> Option<String> {
        let user: Result<User, _> = self.client.get("/user", None::<&()>).await;
        user.ok().map(|u| u.login)
    }

    /// Our comment on `pr`: its body starts with `marker` and it was written by us (`me`, or a bot
    /// when the token cannot say who it is). Someone quoting the marker is never taken for us.
    pub(crate) async fn find_comment(
        &self,
        pr: u64,
        marker: &str,
        me: Option<&str>,
    ) -> Result<Option<Comment>, octocrab::Error> {
        for page in 1.. {
            let route = format!("/repos/{}/issues/{pr}/comments?per_page={PAGE}&page={page}", self.repo);
            let comments: Vec<Comment> = self.client.get(route, None::<&()>).await?;
            let found = comments.iter().find(|c| {
                let ours = match (me, &c.user) {
                    (Some(me), Some(u)) => u.login == me,
                    (None, Some(u)) => u.kind.as_deref() == Some("Bot"),
                    (_, None) => false,
                };
                ours && c.body.as_deref().is_some_and(|b| b.starts_with(marker))
            });
            if let Some(c) = found {
                return Ok(Some(c.clone()));
            }
            if comments.len() < PAGE {
                break;
            }
        }
        Ok(None)
    }

    pub(crate) async fn create_comment(&self, pr: u64, body: &str) -> Result<Comment, octocrab::Error> {
        self.client.post(format!("/repos/{}/issues/{pr}/comments", self.repo), Some(&json!({ "body": body }))).await
    }

    pub(crate) async fn update_comment(&self, id: u64, body: &str) -> Result<Comment, octocrab::Error> {
        self.client.patch(format!("/repos/{}/issues/comments/{id}", self.repo), Some(&json!({ "body": body }))).await
    }

    pub(crate) async fn create_deployment(
        &self,
        sha: &str,
        environment: &str,
        description: &str,
    ) -> Result<u64, octocrab::Error> {
        let body = json!({
            "ref": sha,
            "environment": environment,
            "description": description,
            "auto_merge": false,
            "required_contexts": [],
        });
        let created: Created = self.client.post(format!("/repos/{}/deployments", self.repo), Some(&body)).await?;
        Ok(created.id)
    }

    /// A pull request's state: `open` or `closed`.
    pub(crate) async fn pull_state(&self, number: u64) -> Result<String, octocrab::Error> {
        let pull: Pull = self.client.get(format!("/repos/{}/pulls/{number}", self.repo), None::<&()>).await?;
        debug_assert_eq!(pull.number, number);
        Ok(pull.state)
    }

    /// The Deployments of `environment`, newest first (the first page: a preview has a few).
    pub(crate) async fn deployments(&self, environment: &str) -> Result<Vec<u64>, octocrab::Error> {
        let route = format!("/repos/{}/deployments?environment={}&per_page={PAGE}", self.repo, encode(environment));
        let deployments: Vec<Created> = self.client.get(route, None::<&()>).await?;
        Ok(deployments.into_iter().map(|d| d.id).collect())
    }

    pub(crate) async fn deployment_status(
        &self,
        id: u64,
        state: &str,
        log_url: Option<&str>,
        environment_url: Option<&str>,
        description: &str,
    ) -> Result<(), octocrab::Error> {
        let mut body = json!({ "state": state, "description": description });
        if let Some(url) = log_url {
            body["log_url"] = json!(url);
        }
        if let Some(url) = environment_url {
            body["environment_url"] = json!(url);
        }
        let _: serde_json::Value =
            self.client.post(format!("/repos/{}/deployments/{id}/statuses", self.repo), Some(&body)).await?;
        Ok(())
    }
}

/// A query value with what a URL cannot carry as it is (`/` in `preview/pr-7`) percent-encoded.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A GitHub error as a warning a person can act on; a 403 names the permission the job lacks.
pub(crate) fn explain(e: &octocrab::Error, permission: &str) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let message = source.message.trim();
            match status {
                403 => format!("GitHub answered 403 ({message}): grant the job `permissions: {permission}`"),
                401 => format!("GitHub refused the token (401 {message}): check `github-token`"),
                404 => format!("GitHub answered 404 ({message}): check the repository and that the token can see it"),
                _ => format!("GitHub answered {status} ({message})"),
            }
        }
        other => format!("could not reach GitHub: {other}"),
    }
}

/// A refusal that asking again will not change (no permission, no such pull request, a bad token),
/// as opposed to GitHub being slow or down for a moment.
pub(crate) fn is_permanent(e: &octocrab::Error) -> bool {
    matches!(e, octocrab::Error::GitHub { source, .. } if matches!(source.status_code.as_u16(), 401 | 403 | 404))
}
