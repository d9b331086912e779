//! Scheduled tasks: the task definitions EventBridge rules run through their ECS targets. Pruning
//! keeps what a schedule still starts; `scheduled-tasks` moves a rule's target to the revision a
//! successful deploy registered for its family, so the nightly job runs what the service runs.

use anyhow::{Context as _, Result, bail};
use aws_sdk_eventbridge::types::Target;

use crate::aws::{Aws, call_failed};
use crate::text::family_revision;

/// One ECS target of a rule that runs a family the run deploys, in its cluster.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scheduled {
    pub(crate) rule: String,
    /// The target as EventBridge described it: put back with only its revision changed.
    pub(crate) target: Target,
    pub(crate) family: String,
}

impl Scheduled {
    /// `nightly (target 1) runs web:3`.
    pub(crate) fn describe(&self) -> String {
        let runs = self.target.ecs_parameters().map(|p| family_revision(p.task_definition_arn())).unwrap_or("?");
        format!("{} (target {}) runs {runs}", self.rule, self.target.id())
    }
}

/// Every rule's name (EventBridge's default bus).
async fn rule_names(aws: &Aws) -> Result<Vec<String>> {
    let mut rules = Vec::new();
    let mut token = None;
    loop {
        let out = aws
            .events
            .list_rules()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| call_failed("EventBridge ListRules", &e))
            .context("could not list the EventBridge rules that may run scheduled tasks")?;
        rules.extend(out.rules().iter().filter_map(|r| r.name().map(str::to_string)));
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(rules)
}

async fn targets(aws: &Aws, rule: &str) -> Result<Vec<Target>> {
    let out = aws
        .events
        .list_targets_by_rule()
        .rule(rule)
        .send()
        .await
        .map_err(|e| call_failed("EventBridge ListTargetsByRule", &e))
        .with_context(|| format!("could not read the targets of EventBridge rule `{rule}`"))?;
    Ok(out.targets().to_vec())
}

/// The task definition ARNs (or family ARNs, "the latest ACTIVE") every rule's ECS targets run.
pub(crate) async fn task_definitions(aws: &Aws) -> Result<Vec<String>> {
    let mut used = Vec::new();
    for rule in rule_names(aws).await? {
        let found = targets(aws, &rule).await?;
        used.extend(found.iter().filter_map(|t| t.ecs_parameters()).map(|p| p.task_definition_arn().to_string()));
    }
    Ok(used)
}

/// The ECS targets in `cluster_arn` running one of `families`, of the rules `named` (None: every
/// rule, `scheduled-tasks: auto`). A named rule without such a target is refused: the input would
/// silently do nothing.
pub(crate) async fn find(
    aws: &Aws,
    cluster_arn: &str,
    families: &[String],
    named: Option<&[String]>,
) -> Result<Vec<Scheduled>> {
    let rules = match named {
        Some(names) => names.to_vec(),
        None => rule_names(aws).await?,
    };
    let mut found = Vec::new();
    for rule in rules {
        let mine: Vec<Scheduled> = targets(aws, &rule)
            .await?
            .into_iter()
            .filter(|t| t.arn() == cluster_arn)
            .filter_map(|t| {
                let revision = family_revision(t.ecs_parameters()?.task_definition_arn());
                let family = revision.rsplit_once(':').map_or(revision, |(f, _)| f).to_string();
                families.contains(&family).then(|| Scheduled { rule: rule.clone(), target: t.clone(), family })
            })
            .collect();
        if mine.is_empty() && named.is_some() {
            bail!(
                "input `scheduled-tasks`: EventBridge rule `{rule}` has no ECS target in this cluster running {}: check the name, or use `auto` for every rule that runs them",
                families.join(" or ")
            );
        }
        found.extend(mine);
    }
    Ok(found)
}

/// Points `s`'s target at `revision` (its other settings as they were).
pub(crate) async fn move_to(aws: &Aws, s: &Scheduled, revision: &str) -> Result<()> {
    let mut target = s.target.clone();
    if let Some(p) = target.ecs_parameters.as_mut() {
        p.task_definition_arn = revision.to_string();
    }
    let out = aws
        .events
        .put_targets()
        .rule(&s.rule)
        .targets(target)
        .send()
        .await
        .map_err(|e| call_failed("EventBridge PutTargets", &e))
        .with_context(|| format!("could not point rule `{}` at {}", s.rule, family_revision(revision)))?;
    if out.failed_entry_count() > 0 {
        let why = out.failed_entries().first().and_then(|f| f.error_message()).unwrap_or("no reason given");
        bail!("EventBridge refused rule `{}`'s target {}: {why}", s.rule, s.target.id());
    }
    Ok(())
}
