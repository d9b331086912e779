//! The policy a pull-request preview workflow needs (`iam-policy --preview` with the deploy's
//! flags): the deploy's own statements with its service changes moved from the base service to its
//! previews (`<service>-pr-*`), the previews' target groups and rules, and every change or delete
//! of an existing preview resource conditioned on its tag naming the base service.

use serde_json::json;

use super::{Scope, Statement};
use crate::config::Config;
use crate::plan::preview::PREVIEW_OF;

/// The statements of a preview deploy and teardown of `config`'s service, with rules on `listener`.
pub(crate) fn statements(config: &Config, scope: &Scope, listener: &str) -> Vec<Statement> {
    let mut out = super::statements(config, scope);
    let Some(d) = &config.deploy else { return out };
    let (cluster, base) = (&d.cluster, &d.service);
    let previews = scope.arn("ecs", &format!("service/{cluster}/{base}-pr-*"));
    let tagged = json!({ "StringEquals": { format!("aws:ResourceTag/{PREVIEW_OF}"): base } });
    // The base service is read, never changed; the lease and the deployer's tags go on the preview.
    out.retain(|s| s.sid != "EcsServices");
    for s in out.iter_mut() {
        match s.sid {
            "EcsDeployLease" => s.resources = vec![previews.clone()],
            // A preview's revisions are of a family of its own: `<family>-pr-<number>`.
            "EcsTagNewRevisions" | "EcsRunPreDeployTask" => {
                for r in &mut s.resources {
                    if let Some(family) = r.strip_suffix(":*") {
                        *r = format!("{family}-pr-*:*");
                    }
                }
            }
            _ => {}
        }
    }
    let cluster_arn = scope.arn("ecs", &format!("cluster/{cluster}"));
    let mut added = vec![
        // The base, its previews (the cap counts them) and their tags.
        Statement::new(
            "PreviewReadServices",
            &["ecs:DescribeServices", "ecs:ListTagsForResource"],
            vec![scope.arn("ecs", &format!("service/{cluster}/*"))],
        ),
        Statement::new("PreviewListServices", &["ecs:ListServices"], vec!["*".into()])
            .when(json!({"ArnEquals": {"ecs:cluster": cluster_arn}})),
        Statement::new("PreviewCreateService", &["ecs:CreateService"], vec![previews.clone()]),
        Statement::new("PreviewTagNewService", &["ecs:TagResource"], vec![previews.clone()])
            .when(json!({"StringEquals": {"ecs:CreateAction": "CreateService"}})),
        Statement::new("PreviewChangeService", &["ecs:UpdateService", "ecs:DeleteService"], vec![previews])
            .when(tagged.clone()),
        // Revisions of the preview's family are listed and deregistered when it goes (no resource in
        // IAM), unless a scheduled task (an EventBridge rule's target) still runs one.
        Statement::new(
            "PreviewRevisions",
            &["ecs:ListTaskDefinitions", "ecs:DeregisterTaskDefinition", "events:ListRules"],
            vec!["*".into()],
        ),
        Statement::new(
            "PreviewReadScheduleTargets",
            &["events:ListTargetsByRule"],
            vec![scope.arn("events", "rule/*")],
        ),
        Statement::new(
            "PreviewReadLoadBalancing",
            &[
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
            vec!["*".into()],
        ),
    ];
    let elb = |resource: String| scope.arn("elasticloadbalancing", &resource);
    let tg_names = target_group_pattern(base);
    added.push(Statement::new(
        "PreviewMakeTargetGroup",
        &[
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
        ],
        vec![elb(format!("targetgroup/{tg_names}/*"))],
    ));
    // `…:listener/app/lb/1/2` → its rules, `…:listener-rule/app/lb/1/2/*`.
    let rules = match listener.split_once(":listener/") {
        Some((head, path)) => vec![format!("{head}:listener-rule/{path}/*")],
        None => vec![elb("listener-rule/app/*".into())],
    };
    added.push(Statement::new("PreviewMakeRule", &["elasticloadbalancing:CreateRule"], vec![listener.to_string()]));
    added.push(Statement::new("PreviewTagNewRule", &["elasticloadbalancing:AddTags"], rules.clone()));
    let mut deletable = rules;
    deletable.push(elb(format!("targetgroup/{tg_names}/*")));
    added.push(
        Statement::new(
            "PreviewDeleteTagged",
            &["elasticloadbalancing:DeleteRule", "elasticloadbalancing:DeleteTargetGroup"],
            deletable,
        )
        .when(tagged),
    );
    out.extend(added);
    out
}

/// The names of `base`'s previews' target groups (`plan::preview::target_group_name`): the base's
/// name cut so that the longest pull-request number still fits.
fn target_group_pattern(base: &str) -> String {
    let full = crate::plan::preview::target_group_name(base, 99_999);
    match full.strip_suffix("-pr-99999") {
        Some(prefix) if prefix.len() + "-pr-99999".len() <= 32 && prefix == base => format!("{prefix}-pr-*"),
        Some(prefix) => format!("{prefix}*"),
        None => "*".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_group_names_of_a_short_and_a_long_service() {
        assert_eq!(target_group_pattern("web"), "web-pr-*");
        assert_eq!(target_group_pattern("a-very-long-service-name-for-payments"), "a-very-long-service-nam*");
    }
}
