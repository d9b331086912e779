//! A preview removed: its rule first (no request reaches it any more), then its service (scaled to
//! 0, deleted), its target group and its revisions. Only what carries the preview's tags is ever
//! deleted; something of its name that does not is named and left.

use anyhow::{Result, bail};
use aws_sdk_ecs::types::Service;

use crate::aws::{Aws, call_failed};
use crate::ecs::{copies, prune};
use crate::gha::Gha;
use crate::plan::preview::{identity, is_ours, service_name, service_tags, target_group_name};
use crate::text::family_revision;

/// Which preview: the base service's, of a pull request of a repository, in a cluster.
pub(crate) struct Which<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) base: &'a str,
    pub(crate) number: u64,
    pub(crate) repository: &'a str,
    /// A listener to look for its rule on, besides those of its target group's load balancers.
    pub(crate) listener: Option<&'a str>,
}

/// What a preview has in AWS.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) service: Option<Service>,
    pub(crate) rules: Vec<String>,
    pub(crate) target_group: Option<String>,
    /// Its family's ACTIVE revisions no other service uses.
    pub(crate) revisions: Vec<String>,
}

impl Found {
    pub(crate) fn is_empty(&self) -> bool {
        self.service.is_none() && self.rules.is_empty() && self.target_group.is_none() && self.revisions.is_empty()
    }

    /// Each part, as the log lists it.
    pub(crate) fn describe(&self) -> Vec<String> {
        let mut parts: Vec<String> = self.rules.iter().map(|r| format!("listener rule {r}")).collect();
        if let Some(s) = &self.service {
            parts.push(format!("service {} ({} running)", s.service_name().unwrap_or_default(), s.running_count()));
        }
        parts.extend(self.target_group.iter().map(|t| format!("target group {t}")));
        if !self.revisions.is_empty() {
            let names: Vec<&str> = self.revisions.iter().map(|r| family_revision(r)).collect();
            parts.push(format!("revisions {}", names.join(", ")));
        }
        parts
    }
}

/// Finds the preview's parts; refuses when something of its name is not its own.
pub(crate) async fn find(aws: &Aws, w: &Which<'_>) -> Result<Found> {
    let ours = identity(w.repository, w.base, w.number);
    let name = service_name(w.base, w.number);
    let mut found = Found::default();
    if let Some(service) = copies::find_with_tags(&aws.ecs, w.cluster, &name).await? {
        if !is_ours(&service_tags(&service), &ours) {
            bail!(
                "service `{name}` is not the preview of #{} of {} (its tags say otherwise): it is left as it is",
                w.number,
                w.repository
            );
        }
        found.service = Some(service);
    }
    let tg_name = target_group_name(w.base, w.number);
    let target_group = crate::elb::target_group_named(&aws.elb, &tg_name).await?;
    let mut listeners: Vec<String> = w.listener.map(str::to_string).into_iter().collect();
    if let Some(tg) = &target_group {
        let arn = tg.target_group_arn().unwrap_or_default().to_string();
        let tags = crate::elb::tags(&aws.elb, std::slice::from_ref(&arn)).await?;
        if !tags.get(&arn).is_some_and(|t| is_ours(t, &ours)) {
            bail!(
                "target group `{tg_name}` is not the preview of #{} of {}: it is left as it is",
                w.number,
                w.repository
            );
        }
        for lb in tg.load_balancer_arns() {
            listeners.extend(crate::elb::listeners_of(&aws.elb, lb).await?);
        }
        found.target_group = Some(arn);
    }
    listeners.sort();
    listeners.dedup();
    for listener in &listeners {
        let rules: Vec<String> = crate::elb::rules(&aws.elb, listener)
            .await?
            .iter()
            .filter_map(|r| r.rule_arn().map(str::to_string))
            .collect();
        let tags = crate::elb::tags(&aws.elb, &rules).await?;
        found.rules.extend(rules.into_iter().filter(|r| tags.get(r).is_some_and(|t| is_ours(t, &ours))));
    }
    if let Some(family) = family(aws, w, found.service.as_ref()).await? {
        let used = prune::in_use(aws, w.cluster).await?;
        let by_preview = format!("service {name}");
        for revision in prune::active_revisions(aws, &family).await? {
            if !used.iter().any(|(td, by)| *td == revision && *by != by_preview) {
                found.revisions.push(revision);
            }
        }
    }
    Ok(found)
}

/// The preview's family: its service's, else the base service's with the pull request's suffix.
async fn family(aws: &Aws, w: &Which<'_>, service: Option<&Service>) -> Result<Option<String>> {
    let revision = match service {
        Some(s) => s.task_definition().map(|td| family_revision(td).to_string()),
        None => match crate::ecs::service::find(&aws.ecs, w.cluster, w.base).await? {
            Some(base) => base
                .task_definition()
                .map(|td| format!("{}-pr-{}:0", family_revision(td).rsplit_once(':').map_or("", |(f, _)| f), w.number)),
            None => None,
        },
    };
    Ok(revision.and_then(|r| r.rsplit_once(':').map(|(f, _)| f.to_string())))
}

/// Removes what `found` holds, rule first; the parts removed, or an error naming what is left
/// (a second run finishes from there).
pub(crate) async fn remove(aws: &Aws, cluster: &str, found: Found, gha: &Gha) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut left = Vec::new();
    for rule in &found.rules {
        let what = format!("listener rule {rule} (aws elbv2 delete-rule --rule-arn {rule})");
        record(what, crate::elb::delete_rule(&aws.elb, rule).await, &mut removed, &mut left, gha);
    }
    // While a rule still routes to it, the service stays: the preview keeps answering, not 503.
    if left.is_empty() {
        if let Some(service) = &found.service {
            let name = service.service_name().unwrap_or_default();
            let what = format!("service {name} (aws ecs delete-service --cluster {cluster} --service {name} --force)");
            record(what, copies::scale_down_and_delete(&aws.ecs, cluster, name).await, &mut removed, &mut left, gha);
        }
        if let Some(tg) = &found.target_group {
            let what = format!("target group {tg} (aws elbv2 delete-target-group --target-group-arn {tg})");
            record(what, crate::elb::delete_target_group(&aws.elb, tg).await, &mut removed, &mut left, gha);
        }
        for revision in &found.revisions {
            let name = family_revision(revision);
            let what = format!("revision {name} (aws ecs deregister-task-definition --task-definition {name})");
            let result = aws
                .ecs
                .deregister_task_definition()
                .task_definition(revision)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| call_failed("ECS DeregisterTaskDefinition", &e));
            record(what, result, &mut removed, &mut left, gha);
        }
    }
    if !left.is_empty() {
        bail!(
            "could not remove all of the preview; left: {}. Run again (only what is left is removed)",
            left.join("; ")
        );
    }
    Ok(removed)
}

pub(super) fn record(what: String, result: Result<()>, removed: &mut Vec<String>, left: &mut Vec<String>, gha: &Gha) {
    let short = what.split(" (").next().unwrap_or(&what).to_string();
    match result {
        Ok(()) => {
            gha.info(&format!("  removed {short}"));
            removed.push(short);
        }
        Err(e) => {
            gha.warning(&format!("could not remove {what}: {e:#}"));
            left.push(what);
        }
    }
}
