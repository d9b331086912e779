//! Approvals that outlive the job: where a deploy of ECS's own strategy stops for people
//! (`approval`), and the later run that answers it (`resume`, `service-deployment-arn`). The rules
//! that tie them to the other inputs are here, each naming what to change.

use super::check::Check;
use super::parse::arn;
use super::validate::set;
use super::{Approval, ImageSource, Inputs, Resume};

pub(super) fn approval(c: &mut Check, i: &Inputs) -> Option<Approval> {
    c.parse("approval", i.approval.as_deref(), |v| match v {
        "before-production" => Ok(Approval::BeforeProduction),
        "after-first-shift" => Ok(Approval::AfterFirstShift),
        other => Err(format!(
            "`{other}` is not where a deploy stops for approval: use `before-production` (green reachable on the \
             test route, no production traffic yet) or `after-first-shift` (green on its first share of production, \
             LINEAR and CANARY)"
        )),
    })
}

pub(super) fn resume(c: &mut Check, i: &Inputs) -> Option<Resume> {
    let proceed = c.parse("resume", i.resume.as_deref(), |v| match v {
        "continue" => Ok(true),
        "rollback" => Ok(false),
        other => Err(format!(
            "`{other}` is not an answer to a paused deploy: use `continue` (the gates judge the paused window, then \
             ECS goes on) or `rollback`"
        )),
    });
    let deployment = c.parse("service-deployment-arn", i.service_deployment_arn.as_deref(), |v| {
        arn(v, "ecs", "service-deployment/").map(|_| v.to_string())
    });
    if proceed.is_none() && deployment.is_some() {
        c.warnings.push("`service-deployment-arn` has no effect without `resume`".into());
    }
    proceed.map(|proceed| Resume { proceed, deployment })
}

/// A resumed deploy builds and registers nothing: the paused deployment already runs its revision.
pub(super) fn resumed_image(c: &mut Check, i: &Inputs) -> Option<ImageSource> {
    for (name, value) in
        [("image", &i.image), ("ecr-repository", &i.ecr_repository), ("task-definition", &i.task_definition)]
    {
        if set(value).is_some() {
            c.fail(name, "is set with `resume`, which answers a deploy already paused with its revision: remove it (the run that paused built and deployed the image)");
        }
    }
    Some(ImageSource::AsRegistered)
}

/// What `approval` and `resume` need of the other inputs: ECS's own strategy, one service, and
/// (for `resume`) nothing that would change the revision.
pub(super) fn rules(c: &mut Check, i: &Inputs, approval: bool, resume: bool, several: bool) {
    let strategy = set(&i.strategy);
    for (name, on) in [("approval", approval), ("resume", resume)] {
        if !on {
            continue;
        }
        if let Some(ours @ ("canary" | "rolling")) = strategy.as_deref() {
            c.fail(name, format!("works with ECS's own BLUE_GREEN, LINEAR and CANARY (its pause hooks), and `strategy` is `{ours}`: remove `strategy` or set it to `ecs`"));
        }
        if several {
            c.fail(name, "pauses one service, and `service` names several: deploy the service that waits for approval in a run of its own");
        }
    }
    if approval && resume {
        c.fail("resume", "and `approval` are both set: the run that deploys sets `approval`, the later run that answers the pause sets `resume`");
    }
    if resume {
        for (name, value) in [
            ("environment-variables", &i.environment_variables),
            ("desired-count", &i.desired_count),
            ("pre-deploy-command", &i.pre_deploy_command),
            ("container-name", &i.container_name),
        ] {
            if set(value).is_some() {
                c.fail(
                    name,
                    "is set with `resume`, which answers a deploy already paused with its revision: remove it",
                );
            }
        }
    }
}
