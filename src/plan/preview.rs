//! A pull request's preview, planned with read-only calls: its names, tags and route, which of its
//! service, target group and listener rule are there already (an earlier push's), what a deploy
//! makes, and the cap on open previews. The preview is one more service plan, rolled out.

use std::fmt::Write as _;

use anyhow::{Result, anyhow, bail};
use aws_sdk_ecs::types::{Service, Tag};
use aws_sdk_elasticloadbalancingv2::types::{
    HostHeaderConditionConfig, PathPatternConditionConfig, Rule, RuleCondition, TargetGroup as ElbTargetGroup,
};

use super::{ServicePlan, StrategyPlan};
use crate::aws::Aws;
use crate::config::{DeploySettings, PreviewSettings};
use crate::ecs::copies;
use crate::failure::Refused;
use crate::gha::Gha;

/// The base service a preview copies.
pub(crate) const PREVIEW_OF: &str = "ecs-deploy-action:preview-of";
/// The pull request's number.
pub(crate) const PULL_REQUEST: &str = "ecs-deploy-action:pull-request";
/// `owner/name` (the provenance tag's key too).
pub(crate) const REPOSITORY: &str = "ecs-deploy-action:repository";
/// The run that made or last deployed it.
pub(crate) const RUN: &str = "ecs-deploy-action:run";

/// The deregistration delay of a preview's target group: nobody waits for a preview's last requests.
pub(crate) const DEREGISTRATION_DELAY: &str = "5";

/// How requests reach a preview through the listener.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    /// `Host: pr-<number>.<domain>`.
    Host(String),
    /// The path `/pr-<number>` and everything under it.
    Path(String),
}

impl Route {
    pub(crate) fn new(domain: Option<&str>, number: u64) -> Route {
        match domain {
            Some(domain) => Route::Host(format!("pr-{number}.{domain}")),
            None => Route::Path(format!("/pr-{number}")),
        }
    }

    /// The rule's conditions.
    pub(crate) fn conditions(&self) -> Vec<RuleCondition> {
        match self {
            Route::Host(host) => vec![
                RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(HostHeaderConditionConfig::builder().values(host).build())
                    .build(),
            ],
            Route::Path(path) => vec![
                RuleCondition::builder()
                    .field("path-pattern")
                    .path_pattern_config(
                        PathPatternConditionConfig::builder().values(path).values(format!("{path}/*")).build(),
                    )
                    .build(),
            ],
        }
    }

    pub(crate) fn words(&self) -> String {
        match self {
            Route::Host(host) => format!("requests for host {host}"),
            Route::Path(path) => format!("requests under {path}/"),
        }
    }
}

/// `<service>-pr-<number>`: the preview's service.
pub(crate) fn service_name(base: &str, number: u64) -> String {
    format!("{base}-pr-{number}")
}

/// The preview's target group: `<service>-pr-<number>` cut to ELB's 32 characters (the number kept).
pub(crate) fn target_group_name(base: &str, number: u64) -> String {
    let suffix = format!("-pr-{number}");
    let room = 32usize.saturating_sub(suffix.len());
    let base: String = base.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(room).collect();
    format!("{}{suffix}", base.trim_matches('-'))
}

/// The tags that say whose preview a resource is; every delete checks them first.
pub(crate) fn identity(repository: &str, base: &str, number: u64) -> Vec<(String, String)> {
    vec![
        (PREVIEW_OF.to_string(), base.to_string()),
        (PULL_REQUEST.to_string(), number.to_string()),
        (REPOSITORY.to_string(), repository.to_string()),
    ]
}

/// Whether `tags` carry every tag of `identity`.
pub(crate) fn is_ours(tags: &[(String, String)], identity: &[(String, String)]) -> bool {
    identity.iter().all(|(k, v)| tags.iter().any(|(tk, tv)| tk == k && tv == v))
}

/// An ECS service's tags as pairs.
pub(crate) fn service_tags(service: &Service) -> Vec<(String, String)> {
    service
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
        .collect()
}

/// One pull request's preview, as a deploy will leave it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreviewPlan {
    pub(crate) number: u64,
    pub(crate) base: String,
    pub(crate) service: String,
    pub(crate) listener_arn: String,
    pub(crate) route: Route,
    pub(crate) url: String,
    /// Whose it is, and the run: on its service, target group and rule.
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) target_group_name: String,
    /// The preview's target group, when an earlier run made it.
    pub(crate) target_group_arn: Option<String>,
    /// What a new target group copies (the base service's).
    pub(crate) base_target_group: Box<ElbTargetGroup>,
    /// The preview's rule, when an earlier run made it.
    pub(crate) rule_arn: Option<String>,
    /// None: the service is there (an earlier push's): the new revision rolls out on it.
    pub(crate) create: Option<Box<NewService>>,
    /// Rules of the listener that come before a new rule and match every host: they may answer
    /// the preview's requests.
    pub(crate) shadowed_by: Vec<String>,
}

/// The preview's service, made in the image of the base service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewService {
    pub(crate) base: Service,
    pub(crate) container_name: String,
    pub(crate) container_port: i32,
    pub(crate) desired: i32,
}

/// The preview's service plan from the base service's (`first`, its new revision rendered): the
/// same revision under a family of its own, for the preview's service, made or rolled out.
pub(super) async fn plan(
    settings: &DeploySettings,
    preview: &PreviewSettings,
    base: &Service,
    mut first: ServicePlan,
    aws: &Aws,
    gha: &Gha,
) -> Result<ServicePlan> {
    let (cluster, number) = (&settings.cluster, preview.number);
    let name = service_name(&settings.service, number);
    let identity = identity(&preview.repository, &settings.service, number);
    let mut tags = identity.clone();
    tags.extend(preview.run_url.clone().map(|url| (RUN.to_string(), url)));
    let (target_group_arn, container_name, container_port) = binding(base)?;
    let base_target_group = Box::new(crate::elb::target_group(&aws.elb, &target_group_arn).await?);
    let listener = crate::elb::listener(&aws.elb, &preview.listener_arn).await?;
    let route = Route::new(preview.domain.as_deref(), number);
    let url = url(&route, &listener, aws).await?;
    let rules = crate::elb::rules(&aws.elb, &preview.listener_arn).await?;
    let tg_name = target_group_name(&settings.service, number);
    let existing_tg = crate::elb::target_group_named(&aws.elb, &tg_name).await?;
    let mut arns: Vec<String> = rules.iter().filter_map(|r| r.rule_arn().map(str::to_string)).collect();
    arns.extend(existing_tg.iter().filter_map(|t| t.target_group_arn().map(str::to_string)));
    let elb_tags = crate::elb::tags(&aws.elb, &arns).await?;
    let ours = |arn: &str| elb_tags.get(arn).is_some_and(|t| is_ours(t, &identity));
    let target_group = existing_tg.and_then(|t| t.target_group_arn().map(str::to_string));
    if let Some(arn) = target_group.as_deref().filter(|arn| !ours(arn)) {
        bail!(
            "target group `{tg_name}` ({arn}) is there and is not this pull request's preview (its tags do not say {}): rename or delete it, it is not the action's to change",
            words(&identity)
        );
    }
    let rule_arn = rules.iter().filter_map(|r| r.rule_arn()).find(|arn| ours(arn)).map(str::to_string);
    let free = crate::elb::lowest_free(&rules.iter().map(crate::elb::priority).collect::<Vec<_>>());
    let shadowed_by = match &rule_arn {
        Some(_) => Vec::new(),
        None => rules.iter().filter(|r| crate::elb::priority(r) < free && !has_host(r)).map(describe_rule).collect(),
    };
    let existing = copies::find_with_tags(&aws.ecs, cluster, &name).await?;
    let desired = settings.desired_count.unwrap_or(1);
    let create = match &existing {
        Some(service) if !is_ours(&service_tags(service), &identity) => bail!(
            "service `{name}` is in cluster `{cluster}` and is not this pull request's preview (its tags do not say {}): rename or delete it, it is not the action's to change",
            words(&identity)
        ),
        Some(_) => None,
        None => {
            let open = copies::tagged(&aws.ecs, cluster, PREVIEW_OF, Some(&settings.service)).await?;
            if open.len() >= preview.limit as usize {
                let listed: Vec<String> = open.iter().map(open_preview).collect();
                return Err(Refused(format!(
                    "`{}` has {} open previews, its limit (`preview-limit` {}): {}. Close a pull request (its preview goes with it), remove stale previews with `ecs-deploy-action previews prune` (README, \"Pull-request previews\"), or raise `preview-limit`; nothing was changed",
                    settings.service,
                    open.len(),
                    preview.limit,
                    listed.join(", ")
                ))
                .into());
            }
            Some(Box::new(NewService { base: base.clone(), container_name, container_port, desired }))
        }
    };
    if let Some(service) = &existing {
        // An earlier push's preview: it must not be mid-deploy, as any service deployed to.
        let _ = super::in_flight::settled(settings, &name, aws, gha).await?;
        first.service_arn = service.service_arn().unwrap_or_default().to_string();
        first.desired_count = service.desired_count();
        first.previous_task_definition_arn = service.task_definition().unwrap_or_default().to_string();
        first.deployed_by = None;
    } else {
        first.service_arn = String::new();
        first.desired_count = 0;
        first.deployed_by = None;
    }
    first.new_desired_count = Some(desired);
    // The base service is copied, not changed: its drift is not this run's.
    first.drift = Vec::new();
    first.service = name.clone();
    // A family of its own: its revisions go with it.
    let family = first.rendered.task_definition.family().unwrap_or_default();
    first.rendered.task_definition.family = Some(format!("{family}-pr-{number}"));
    first.as_is = None;
    first.tags.extend(tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()));
    first.strategy = StrategyPlan::Preview(Box::new(PreviewPlan {
        number,
        base: settings.service.clone(),
        service: name,
        listener_arn: preview.listener_arn.clone(),
        route,
        url,
        tags,
        target_group_name: tg_name,
        target_group_arn: target_group,
        base_target_group,
        rule_arn,
        create,
        shadowed_by,
    }));
    Ok(first)
}

/// The base service's one target group, its container and port.
fn binding(base: &Service) -> Result<(String, String, i32)> {
    let name = base.service_name().unwrap_or_default();
    let entries: Vec<_> = base.load_balancers().iter().filter(|lb| lb.target_group_arn().is_some()).collect();
    match entries.as_slice() {
        [one] => Ok((
            one.target_group_arn().unwrap_or_default().to_string(),
            one.container_name().unwrap_or_default().to_string(),
            one.container_port().unwrap_or_default(),
        )),
        [] => bail!(
            "service `{name}` has no load balancer: a preview is reached through a rule of `listener-arn` that forwards to a target group like the service's, so the service must be behind an ALB target group"
        ),
        several => bail!(
            "service `{name}` is behind {} target groups: a preview copies one; previews of services behind several target groups are not supported",
            several.len()
        ),
    }
}

/// The preview's address: the domain's host or the load balancer's name, with the listener's
/// scheme and port.
async fn url(route: &Route, listener: &aws_sdk_elasticloadbalancingv2::types::Listener, aws: &Aws) -> Result<String> {
    let https = listener.protocol().is_some_and(|p| p.as_str() == "HTTPS");
    let scheme = if https { "https" } else { "http" };
    let port = match listener.port() {
        Some(80) if !https => String::new(),
        Some(443) if https => String::new(),
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    Ok(match route {
        Route::Host(host) => format!("{scheme}://{host}{port}/"),
        Route::Path(path) => {
            let lb = listener.load_balancer_arn().ok_or_else(|| anyhow!("the listener names no load balancer"))?;
            let dns = crate::elb::dns_name(&aws.elb, lb).await?.to_ascii_lowercase();
            format!("{scheme}://{dns}{port}{path}/")
        }
    })
}

fn has_host(rule: &Rule) -> bool {
    rule.conditions().iter().any(|c| c.field() == Some("host-header"))
}

fn describe_rule(rule: &Rule) -> String {
    let conditions: Vec<String> = rule
        .conditions()
        .iter()
        .map(|c| {
            let mut values: Vec<&str> = c.values().iter().map(String::as_str).collect();
            values.extend(c.path_pattern_config().map(|p| p.values()).unwrap_or_default().iter().map(String::as_str));
            format!("{} {}", c.field().unwrap_or("condition"), values.join(","))
        })
        .collect();
    format!("priority {} ({})", rule.priority().unwrap_or("?"), conditions.join(", "))
}

fn words(identity: &[(String, String)]) -> String {
    identity.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// An open preview as the cap's refusal lists it: its service, pull request and age.
fn open_preview(service: &Service) -> String {
    let name = service.service_name().unwrap_or_default();
    let pr = copies::tag(service, PULL_REQUEST).map(|n| format!(" (#{n})")).unwrap_or_default();
    format!("{name}{pr}")
}

/// A pull request's preview: what is made (the first time), what rolls out, where it answers.
pub(super) fn text(out: &mut String, p: &PreviewPlan, wait_timeout: std::time::Duration) {
    let _ = writeln!(out, "strategy: preview of {} for pull request #{}, at {}", p.base, p.number, p.url);
    match &p.target_group_arn {
        Some(_) => {
            let _ = writeln!(out, "  target group {}: in place", p.target_group_name);
        }
        None => {
            let _ = writeln!(
                out,
                "  make:   target group {} like {}'s (health check, port, VPC), deregistration delay {}s",
                p.target_group_name, p.base, DEREGISTRATION_DELAY
            );
        }
    }
    match &p.rule_arn {
        Some(arn) => {
            let _ = writeln!(out, "  rule {arn}: in place");
        }
        None => {
            let _ = writeln!(
                out,
                "  make:   a rule of listener {} at its lowest free priority: {} → {}",
                p.listener_arn,
                p.route.words(),
                p.target_group_name
            );
        }
    }
    match &p.create {
        Some(new) => {
            let _ = writeln!(
                out,
                "  make:   service {} like {} ({} task(s) of the new revision), wait until it is stable and its targets healthy (timeout {})",
                p.service,
                p.base,
                new.desired,
                crate::config::duration::format(wait_timeout)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  rolling: update {} (an earlier push's), wait until it is stable (timeout {})",
                p.service,
                crate::config::duration::format(wait_timeout)
            );
        }
    }
    let tags: Vec<String> = p.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(out, "  tags:   {}", tags.join(", "));
    for rule in &p.shadowed_by {
        let _ = writeln!(
            out,
            "  note:   the listener's rule at {rule} comes first and matches every host: it may answer the preview's requests"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ecs_and_elb_and_keep_the_number() {
        assert_eq!(service_name("web", 7), "web-pr-7");
        assert_eq!(target_group_name("web", 7), "web-pr-7");
        let long = target_group_name("a-very-long-service-name-for-the-payments-team", 12345);
        assert_eq!(long.len(), 32, "{long}");
        assert!(long.ends_with("-pr-12345"), "{long}");
        assert_eq!(target_group_name("my_service", 3), "my-service-pr-3");
    }

    #[test]
    fn a_resource_is_ours_only_with_every_identity_tag() {
        let id = identity("octo/app", "web", 7);
        let mut tags = id.clone();
        tags.push(("team".into(), "a".into()));
        assert!(is_ours(&tags, &id));
        assert!(!is_ours(&identity("octo/app", "web", 8), &id), "another pull request's");
        assert!(!is_ours(&identity("other/app", "web", 7), &id), "another repository's");
        assert!(!is_ours(&[], &id));
    }

    #[test]
    fn routes_by_host_or_by_path() {
        assert_eq!(Route::new(Some("preview.example.com"), 7), Route::Host("pr-7.preview.example.com".into()));
        assert_eq!(Route::new(None, 7), Route::Path("/pr-7".into()));
        let path = Route::new(None, 7).conditions();
        let values = path[0].path_pattern_config().unwrap().values();
        assert_eq!(values, ["/pr-7", "/pr-7/*"]);
    }
}
