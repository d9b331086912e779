//! The role's trust policy for GitHub's OIDC provider: the audience the action asks for and a `sub`
//! scoped to one repository and one environment (or one ref), as GitHub writes it into the token.

use serde_json::json;

/// GitHub's OIDC issuer, as IAM names its condition keys.
pub(crate) const ISSUER: &str = "token.actions.githubusercontent.com";

/// What the job's token must be for: a deployment environment, or a git ref.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Subject {
    Environment(String),
    Ref(String),
}

impl Subject {
    /// The `sub` claim GitHub puts in a job's token: `repo:OWNER/REPO:environment:NAME` for a job
    /// with `environment:`, else `repo:OWNER/REPO:ref:refs/heads/main`.
    pub(crate) fn claim(&self, repository: &str) -> String {
        match self {
            Subject::Environment(name) => format!("repo:{repository}:environment:{name}"),
            Subject::Ref(r) => format!("repo:{repository}:ref:{r}"),
        }
    }

    /// `--ref main` means the branch: `refs/heads/main`.
    pub(crate) fn git_ref(r: &str) -> Subject {
        let r = r.trim();
        Subject::Ref(if r.starts_with("refs/") { r.to_string() } else { format!("refs/heads/{r}") })
    }
}

/// `owner/repo`, as GitHub spells it in `GITHUB_REPOSITORY`.
pub(crate) fn repository(v: &str) -> Result<String, String> {
    let ok = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match v.trim().split_once('/') {
        Some((owner, repo)) if ok(owner) && ok(repo) => Ok(v.trim().to_string()),
        _ => Err(format!("`{v}` is not a repository: use owner/repo, e.g. octo-org/octo-repo")),
    }
}

/// The trust policy document for `account`'s GitHub OIDC provider.
pub(crate) fn document(partition: &str, account: &str, repository: &str, subject: &Subject, audience: &str) -> String {
    let doc = Trust {
        version: "2012-10-17",
        statement: [TrustStatement {
            sid: "GitHubActionsDeploy",
            effect: "Allow",
            principal: json!({"Federated": format!("arn:{partition}:iam::{account}:oidc-provider/{ISSUER}")}),
            action: "sts:AssumeRoleWithWebIdentity",
            condition: json!({
                "StringEquals": {
                    format!("{ISSUER}:aud"): audience,
                    format!("{ISSUER}:sub"): subject.claim(repository),
                }
            }),
        }],
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Trust {
    version: &'static str,
    statement: [TrustStatement; 1],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct TrustStatement {
    sid: &'static str,
    effect: &'static str,
    principal: serde_json::Value,
    action: &'static str,
    condition: serde_json::Value,
}
