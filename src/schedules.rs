//! Scheduled tasks: the task definitions EventBridge rules run through their ECS targets, so that
//! nothing the action prunes is one a schedule still starts.

use anyhow::{Context as _, Result};

use crate::aws::{Aws, call_failed};

/// The task definition ARNs (or family ARNs, "the latest ACTIVE") every rule's ECS targets run.
pub(crate) async fn task_definitions(aws: &Aws) -> Result<Vec<String>> {
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
    let mut used = Vec::new();
    for rule in rules {
        let out = aws
            .events
            .list_targets_by_rule()
            .rule(&rule)
            .send()
            .await
            .map_err(|e| call_failed("EventBridge ListTargetsByRule", &e))
            .with_context(|| format!("could not read the targets of EventBridge rule `{rule}`"))?;
        used.extend(
            out.targets().iter().filter_map(|t| t.ecs_parameters()).map(|p| p.task_definition_arn().to_string()),
        );
    }
    Ok(used)
}
