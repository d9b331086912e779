//! Who and what made a revision: the commit, the repository, the workflow run, the actor and this
//! action's version, as tags on every revision the action registers (and labels on an image it
//! builds) and on the service after a successful deploy (with the revision deployed), read back from
//! the service's current revision for the plan ("deployed by … from …").

use aws_sdk_ecs::types::Tag;

/// Every tag key the action writes starts with it; a new revision gets fresh values for them.
pub(crate) const PREFIX: &str = "ecs-deploy-action:";

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Provenance {
    pub(crate) commit: Option<String>,
    pub(crate) repository: Option<String>,
    pub(crate) run_url: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) version: String,
}

impl Provenance {
    /// From the runner's environment (locally: the commit checked out and the version alone).
    pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let v = |k: &str| var(k).filter(|s| !s.trim().is_empty());
        Provenance {
            commit: crate::config::git::built_commit(&var),
            repository: v("GITHUB_REPOSITORY"),
            run_url: crate::workflow_run::GitHubContext::from_env(&var).run_url,
            actor: v("GITHUB_ACTOR"),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// (name, value) of what is known, in a fixed order.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (name, value) in
            [("commit", &self.commit), ("repository", &self.repository), ("run", &self.run_url), ("actor", &self.actor)]
        {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
        out.push(("version", self.version.clone()));
        out
    }

    /// As ECS tags (values cut to ECS's 256 characters).
    pub(crate) fn tags(&self) -> Vec<Tag> {
        self.pairs()
            .into_iter()
            .map(|(name, value)| {
                Tag::builder().key(format!("{PREFIX}{name}")).value(value.chars().take(256).collect::<String>()).build()
            })
            .collect()
    }
}

/// The keys a deploy tags a service with after it succeeded (`on_service`), for the policy.
pub(crate) const SERVICE_KEYS: [&str; 7] = [
    "ecs-deploy-action:commit",
    "ecs-deploy-action:repository",
    "ecs-deploy-action:run",
    "ecs-deploy-action:actor",
    "ecs-deploy-action:version",
    "ecs-deploy-action:revision",
    "ecs-deploy-action:desired-count",
];

/// `existing` tags without the action's own, then `ours`: a new revision keeps its team's tags and
/// says who made it.
pub(crate) fn carried(existing: &[Tag], ours: &[Tag]) -> Vec<Tag> {
    existing.iter().filter(|t| !t.key().is_some_and(|k| k.starts_with(PREFIX))).chain(ours).cloned().collect()
}

/// A service's tags after a deploy: who and what deployed (`ours`), the revision it deployed and the
/// task count it left (what the next plan compares with, to notice a change made elsewhere).
pub(crate) fn on_service(ours: &[Tag], revision: &str, desired: Option<i32>) -> Vec<Tag> {
    let revision = Tag::builder().key(format!("{PREFIX}revision")).value(revision).build();
    let desired = desired.map(|n| Tag::builder().key(format!("{PREFIX}desired-count")).value(n.to_string()).build());
    ours.iter().cloned().chain(std::iter::once(revision)).chain(desired).collect()
}

/// Who made a revision, from its tags: `by octocat from abc1234 (https://…/runs/42)`; None when the
/// action did not register it.
pub(crate) fn describe(tags: &[Tag]) -> Option<String> {
    let get = |name: &str| {
        tags.iter().find(|t| t.key() == Some(&format!("{PREFIX}{name}"))).and_then(|t| t.value()).map(str::to_string)
    };
    get("version")?;
    let mut out = String::from("registered by ecs-deploy-action");
    if let Some(actor) = get("actor") {
        out = format!("deployed by {actor}");
    }
    if let Some(commit) = get("commit") {
        out += &format!(" from {}", commit.chars().take(12).collect::<String>());
    }
    if let Some(run) = get("run") {
        out += &format!(" ({run})");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag::builder().key(k).value(v).build()
    }

    #[test]
    fn a_new_revision_keeps_the_teams_tags_and_replaces_the_actions_own() {
        let env = |k: &str| match k {
            "GITHUB_REPOSITORY" => Some("octo/app".to_string()),
            "GITHUB_SHA" => Some("0123456789abcdef0123".to_string()),
            "GITHUB_SERVER_URL" => Some("https://github.com".to_string()),
            "GITHUB_RUN_ID" => Some("42".to_string()),
            "GITHUB_ACTOR" => Some("octocat".to_string()),
            _ => None,
        };
        let ours = Provenance::from_env(env).tags();
        let old = [tag("team", "platform"), tag("ecs-deploy-action:actor", "someone-before")];
        let tags = carried(&old, &ours);
        assert_eq!(tags.iter().filter(|t| t.key() == Some("ecs-deploy-action:actor")).count(), 1);
        assert!(tags.contains(&tag("team", "platform")));
        assert_eq!(
            describe(&tags).as_deref(),
            Some("deployed by octocat from 0123456789ab (https://github.com/octo/app/actions/runs/42)")
        );
        assert_eq!(describe(&[tag("team", "platform")]), None, "not one of ours");
    }
}
