//! Drift: a service whose revision or task count changed since this action last deployed it (the
//! console, the CLI, Terraform), read from the tags the action leaves on it after a success. The plan
//! shows what differs; `drift: refuse` stops the run before any change.

use aws_sdk_ecs::types::Service;

use crate::failure::Refused;
use crate::gha::Gha;
use crate::text::family_revision;

/// What differs between `service` now and what the action left on it, in words; empty when nothing
/// does or the action never deployed it.
pub(crate) fn of(service: &Service) -> Vec<String> {
    let tag = |key: &str| service.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value());
    let name = service.service_name().unwrap_or_default();
    let mut drift = Vec::new();
    let runs = service.task_definition().map(family_revision).unwrap_or_default();
    if let Some(deployed) = tag("ecs-deploy-action:revision").filter(|d| *d != runs) {
        drift.push(format!("`{name}` runs {runs}; the action last deployed {deployed}"));
    }
    let count = tag("ecs-deploy-action:desired-count").and_then(|c| c.parse::<i32>().ok());
    if let Some(left) = count.filter(|c| *c != service.desired_count()) {
        drift.push(format!("`{name}` wants {} tasks; the action left {left}", service.desired_count()));
    }
    drift
}

/// Says the drift of the run's services: a warning each, or (`refuse`) the refusal that ends the
/// run before any change.
pub(crate) fn judge(drift: &[String], refuse: bool, gha: &Gha) -> anyhow::Result<()> {
    if drift.is_empty() {
        return Ok(());
    }
    if refuse {
        return Err(Refused(format!(
            "changed outside the action since its last deploy: {}. Nothing was changed (`drift: refuse`): bring the change into the task definition or the workflow, or deploy over it with `drift: warn`",
            drift.join("; ")
        ))
        .into());
    }
    for d in drift {
        gha.warning(&format!("drift: {d} (changed outside the action since its last deploy)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::Tag;

    fn service(runs: &str, desired: i32, tags: &[(&str, &str)]) -> Service {
        let mut s = Service::builder().service_name("web").task_definition(runs).desired_count(desired);
        for (k, v) in tags {
            s = s.tags(Tag::builder().key(*k).value(*v).build());
        }
        s.build()
    }

    #[test]
    fn a_revision_or_count_changed_elsewhere_is_drift_and_an_untagged_service_is_not() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:9";
        let ours = [("ecs-deploy-action:revision", "web:7"), ("ecs-deploy-action:desired-count", "2")];
        assert_eq!(
            of(&service(arn, 4, &ours)),
            ["`web` runs web:9; the action last deployed web:7", "`web` wants 4 tasks; the action left 2"]
        );
        let same = [("ecs-deploy-action:revision", "web:9"), ("ecs-deploy-action:desired-count", "4")];
        assert!(of(&service(arn, 4, &same)).is_empty());
        assert!(of(&service(arn, 4, &[])).is_empty(), "never deployed by the action: nothing to compare");
    }
}
