//! The first deploy of a preview: its target group (a copy of the base service's), its rule at the
//! listener's lowest free priority, and its service running the new revision, each tagged with whose
//! preview it is; undone traffic first (the rule, then the service and target group) when a step or
//! the rollout fails.

use anyhow::Result;
use aws_sdk_ecs::types::{Deployment, LoadBalancer, Tag};

use crate::aws::Aws;
use crate::ecs::copies;
use crate::ecs::rollout::Release;
use crate::gha::Gha;
use crate::plan::preview::{DEREGISTRATION_DELAY, PreviewPlan};

/// What one run made of a preview, in the order it was made.
#[derive(Debug, Default)]
pub(crate) struct Made {
    pub(crate) target_group: Option<String>,
    pub(crate) rule: Option<String>,
    /// The service was created by this run (its first deployment, as ECS answered).
    pub(crate) service: Option<Option<Deployment>>,
}

/// Makes what the preview lacks. The service is created running the new revision (the release's)
/// with its task count; an error undoes what was made before it and says so.
pub(crate) async fn make(aws: &Aws, p: &PreviewPlan, release: &Release<'_>, gha: &Gha) -> Result<Made> {
    let mut made = Made::default();
    let result = make_parts(aws, p, release, &mut made, gha).await;
    match result {
        Ok(()) => Ok(made),
        Err(e) => {
            let left = undo(aws, p, release.cluster, made, gha).await;
            Err(match left {
                None => e.context("the preview's parts made before this are removed again"),
                Some(left) => e.context(format!("left behind (remove by hand): {left}")),
            })
        }
    }
}

async fn make_parts(aws: &Aws, p: &PreviewPlan, release: &Release<'_>, made: &mut Made, gha: &Gha) -> Result<()> {
    let target_group = match &p.target_group_arn {
        Some(arn) => arn.clone(),
        None => {
            let like = &p.base_target_group;
            let arn = crate::elb::clone_target_group(
                &aws.elb,
                &p.target_group_name,
                like,
                &p.tags,
                Some(DEREGISTRATION_DELAY),
            )
            .await?;
            gha.info(&format!("made target group {} for the preview of #{}", p.target_group_name, p.number));
            made.target_group = Some(arn.clone());
            arn
        }
    };
    if p.rule_arn.is_none() {
        let conditions = p.route.conditions();
        let (arn, priority) =
            crate::elb::create_rule(&aws.elb, &p.listener_arn, conditions, &target_group, &p.tags).await?;
        gha.info(&format!(
            "made a listener rule at priority {priority}: {} → {}",
            p.route.words(),
            p.target_group_name
        ));
        made.rule = Some(arn);
    }
    if let Some(new) = &p.create {
        let target = LoadBalancer::builder()
            .target_group_arn(&target_group)
            .container_name(&new.container_name)
            .container_port(new.container_port)
            .build();
        let tags = p.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let copy = copies::Copy {
            name: &p.service,
            task_definition: Some(release.revision),
            desired: new.desired,
            target,
            tags,
        };
        let created = copies::create_like(&aws.ecs, &new.base, copy).await?;
        gha.info(&format!(
            "made service {} ({} task(s) of {})",
            p.service,
            new.desired,
            crate::text::family_revision(release.revision)
        ));
        made.service = Some(crate::ecs::service::primary(created.deployments()).cloned());
    }
    Ok(())
}

/// Removes what `made` holds, traffic first: the rule (no request reaches the preview any more),
/// then the service (scaled to 0, deleted), then the target group. `None` when all of it is gone,
/// else what is left and how to remove it.
pub(crate) async fn undo(aws: &Aws, p: &PreviewPlan, cluster: &str, made: Made, gha: &Gha) -> Option<String> {
    let (mut left, mut removed) = (Vec::new(), Vec::new());
    let mut said = |what: String, result: Result<()>, left: &mut Vec<String>, gha: &Gha| {
        super::teardown::record(what, result, &mut removed, left, gha);
    };
    if let Some(arn) = made.rule {
        let result = crate::elb::delete_rule(&aws.elb, &arn).await;
        said(format!("listener rule {arn} (aws elbv2 delete-rule --rule-arn {arn})"), result, &mut left, gha);
    }
    if made.service.is_some() {
        let result = copies::scale_down_and_delete(&aws.ecs, cluster, &p.service).await;
        said(
            format!(
                "service {} (aws ecs delete-service --cluster {cluster} --service {} --force)",
                p.service, p.service
            ),
            result,
            &mut left,
            gha,
        );
    }
    if let Some(arn) = made.target_group {
        let result = crate::elb::delete_target_group(&aws.elb, &arn).await;
        said(
            format!("target group {arn} (aws elbv2 delete-target-group --target-group-arn {arn})"),
            result,
            &mut left,
            gha,
        );
    }
    (!left.is_empty()).then(|| left.join("; "))
}
