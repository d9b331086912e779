//! `keep-revisions`: after a successful deploy, each deployed family keeps its newest N ACTIVE
//! revisions; the older ones are deregistered unless a service of the cluster (any of its
//! deployments) or a scheduled task still uses them. Pruning never fails a deploy: a refused or
//! failed call is a warning naming what was left.

use std::collections::HashSet;

use anyhow::{Context as _, Result};
use aws_sdk_ecs::types::{SortOrder, TaskDefinitionStatus};

use crate::aws::{Aws, call_failed};
use crate::gha::Gha;
use crate::text::family_revision;

/// What a prune did, for the log.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Pruned {
    pub(crate) deregistered: Vec<String>,
    /// Older revisions kept because something uses them, with what (`web:3 (service api)`).
    pub(crate) in_use: Vec<String>,
}

/// Prunes each of `families` to its newest `keep` revisions; says what it did.
pub(crate) async fn prune(aws: &Aws, cluster: &str, families: &[String], keep: u32, gha: &Gha) {
    match prune_all(aws, cluster, families, keep).await {
        Ok(p) => {
            let kept = if p.in_use.is_empty() { String::new() } else { format!("; kept, in use: {}", p.in_use.join(", ")) };
            if p.deregistered.is_empty() {
                gha.info(&format!("keep-revisions {keep}: nothing to deregister{kept}"));
            } else {
                gha.info(&format!("keep-revisions {keep}: deregistered {}{kept}", p.deregistered.join(", ")));
            }
        }
        Err(e) => gha.warning(&format!(
            "keep-revisions: old revisions were not pruned ({e:#}); the deploy itself succeeded. `ecs-deploy-action iam-policy` with this workflow's inputs prints the permissions pruning needs"
        )),
    }
}

pub(crate) async fn prune_all(aws: &Aws, cluster: &str, families: &[String], keep: u32) -> Result<Pruned> {
    let used = in_use(aws, cluster).await?;
    let mut pruned = Pruned::default();
    for family in families {
        let revisions = active_revisions(aws, family).await?;
        for arn in revisions.iter().skip(usize::try_from(keep).unwrap_or(usize::MAX)) {
            let name = family_revision(arn).to_string();
            if let Some(user) = used.iter().find(|(td, _)| td == arn).map(|(_, by)| by) {
                pruned.in_use.push(format!("{name} ({user})"));
                continue;
            }
            aws.ecs
                .deregister_task_definition()
                .task_definition(arn)
                .send()
                .await
                .map_err(|e| call_failed("ECS DeregisterTaskDefinition", &e))
                .with_context(|| {
                    format!("could not deregister {name} (deregistered before it: {})", pruned.deregistered.join(", "))
                })?;
            pruned.deregistered.push(name);
        }
    }
    Ok(pruned)
}

/// `family`'s ACTIVE revisions, newest first.
pub(crate) async fn active_revisions(aws: &Aws, family: &str) -> Result<Vec<String>> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = aws
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(TaskDefinitionStatus::Active)
            .sort(SortOrder::Desc)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| call_failed("ECS ListTaskDefinitions", &e))
            .with_context(|| format!("could not list the revisions of {family}"))?;
        // The exact family: `web` lists `web:3`, never `web-worker:3`.
        let exact = out
            .task_definition_arns()
            .iter()
            .filter(|a| family_revision(a).rsplit_once(':').map(|(f, _)| f) == Some(family));
        all.extend(exact.cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    // Newest first whatever order came back: by revision number.
    all.sort_by_key(|a| std::cmp::Reverse(a.rsplit(':').next().and_then(|r| r.parse::<u32>().ok()).unwrap_or(0)));
    Ok(all)
}

/// Every task definition a service of `cluster` (any of its deployments) or a scheduled task uses,
/// with who uses it.
pub(crate) async fn in_use(aws: &Aws, cluster: &str) -> Result<Vec<(String, String)>> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let out = aws
            .ecs
            .list_services()
            .cluster(cluster)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| call_failed("ECS ListServices", &e))
            .with_context(|| format!("could not list the services of cluster {cluster}"))?;
        names.extend(out.service_arns().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut used = Vec::new();
    for chunk in names.chunks(10) {
        let out = aws
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| call_failed("ECS DescribeServices", &e))
            .with_context(|| format!("could not read the services of cluster {cluster}"))?;
        for service in out.services() {
            let by = format!("service {}", service.service_name().unwrap_or_default());
            let tds: HashSet<&str> = service
                .task_definition()
                .into_iter()
                .chain(service.deployments().iter().filter_map(|d| d.task_definition()))
                .collect();
            used.extend(tds.into_iter().map(|td| (td.to_string(), by.clone())));
        }
    }
    for td in crate::schedules::task_definitions(aws).await? {
        used.push((td, "a scheduled task".to_string()));
    }
    Ok(used)
}
