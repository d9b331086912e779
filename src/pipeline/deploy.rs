//! The deploy stage of a run: the leases, the new revisions registered, the pre-deploy task, every
//! service by its strategy (the others alongside the first), and how it ended.

use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::aws::Aws;
use crate::canary;
use crate::ecs::lease::{self, Lease, Leases};
use crate::ecs::{one_off, rollout, stopped, taskdef};
use crate::gha::Gha;
use crate::outcome::Outcome;
use crate::plan::{self, DeployPlan, StrategyPlan};
use crate::progress::{self, Both, Event, Progress as _};
use crate::report::GitHubContext;
use crate::report::sink::Report;
use crate::stop::Stop;
use crate::{signals, together};

use super::{Failure, InStage, NO_SERVICE_CHANGED, SERVICE_UNCHANGED, Timings, output, poll_setting};

async fn release_all(leases: Vec<Lease>, aws: &Aws, gha: &Gha) {
    for lease in leases {
        lease.release(&aws.ecs, gha).await;
    }
}

/// The deploy lease on every service of the run (the first one's stable service first), then what
/// the plan assumed asked again: from here on no other run of this action deploys to them. A
/// refused lease releases those already taken; a cancellation that came meanwhile ends the run
/// before any change.
pub(super) async fn take_leases(
    deploy: &DeployPlan,
    aws: &Aws,
    var: &impl Fn(&str) -> Option<String>,
    gha: &Gha,
) -> Result<Vec<Lease>, Failure> {
    let holder = GitHubContext::from_env(var).run_url.unwrap_or_else(|| {
        format!("local run on {} pid {}", var("HOSTNAME").unwrap_or_else(|| "this machine".into()), std::process::id())
    });
    // Long enough to read back what a second run wrote at the same moment, and no longer than a poll.
    let settle = poll_setting(var).first.min(Duration::from_secs(1));
    // `ECS_DEPLOY_TEST_LEASE_HOLD` (tests only): a short lease, to prove that renewal keeps it.
    let hold = var("ECS_DEPLOY_TEST_LEASE_HOLD")
        .and_then(|v| crate::config::duration::parse(&v).ok())
        .unwrap_or_else(|| plan::worst_case(deploy));
    let mut leases = Vec::new();
    for (service, arn, _) in deploy.services() {
        match lease::take(&aws.ecs, service, arn, &holder, hold, settle, gha).await {
            Ok(lease) => leases.push(lease),
            Err(e) => {
                release_all(leases, aws, gha).await;
                return Err(e).in_stage("Deploy failed", SERVICE_UNCHANGED);
            }
        }
    }
    let checked = match plan::recheck(deploy, aws).await {
        Ok(()) if *signals::cancelled().borrow() => Err(anyhow::anyhow!(signals::CANCELLED_REASON)),
        other => other,
    };
    if let Err(e) = checked {
        release_all(leases, aws, gha).await;
        return Err(e).in_stage("Deploy failed", SERVICE_UNCHANGED);
    }
    Ok(leases)
}

/// Register the new revision and roll it out, holding the lease.
// Eight: the run's context is passed piece by piece until #23 gives the pipeline one deploy context.
#[expect(clippy::too_many_arguments, reason = "the pipeline's context, until one deploy context holds it (#23)")]
pub(super) async fn deploy_stage(
    deploy: &DeployPlan,
    image_uri: &str,
    aws: &Aws,
    var: &impl Fn(&str) -> Option<String>,
    gha: &Gha,
    mut report: Report,
    leases: &Leases,
    timings: &mut Timings,
) -> Result<(), Failure> {
    let mut rendered = deploy.rendered.clone();
    taskdef::set_image(&mut rendered, image_uri);
    let revision = match &deploy.as_is {
        // A known revision as it is: promotion between environments, or back to a known good one.
        Some(known) => {
            gha.info(&format!("deploying {} as it is: nothing registered", crate::text::family_revision(known)));
            known.clone()
        }
        None => {
            let revision = crate::ecs::register::register(&aws.ecs, &rendered.task_definition, &deploy.tags)
                .await
                .in_stage("Deploy failed", SERVICE_UNCHANGED)?;
            let (short, container) = (crate::text::family_revision(&revision), &rendered.container);
            gha.info(&format!("registered {short} ({image_uri} in container {container})"));
            revision
        }
    };
    // Every revision is registered before any service changes: a refused one changes nothing.
    let mut others = Vec::new();
    for also in &deploy.also {
        let mut rendered = also.rendered.clone();
        taskdef::set_image(&mut rendered, image_uri);
        let registered = crate::ecs::register::register(&aws.ecs, &rendered.task_definition, &also.tags)
            .await
            .with_context(|| format!("service `{}`", also.service))
            .in_stage(
                "Deploy failed",
                &format!("{NO_SERVICE_CHANGED} {} stays registered, unused.", crate::text::family_revision(&revision)),
            )?;
        let short = crate::text::family_revision(&registered);
        gha.info(&format!("registered {short} for {} ({image_uri} in container {})", also.service, rendered.container));
        others.push((together::Other { plan: also, revision: registered }, rendered));
    }
    output(gha, "task-definition-arn", &revision);
    output(gha, "previous-task-definition-arn", &deploy.previous_task_definition_arn);
    let previous = &deploy.previous_task_definition_arn;
    report.emit(Event::Registered { service: &deploy.service, revision: &revision, previous }, &[]).await;
    for (o, _) in &others {
        let (service, previous) = (&o.plan.service, &o.plan.previous_task_definition_arn);
        report.emit(Event::Registered { service, revision: &o.revision, previous }, &[]).await;
    }
    timings.mark("register");

    if let Some((command, run_as)) = &deploy.pre_deploy {
        let one_off = one_off::OneOff {
            cluster: &deploy.cluster,
            revision: &revision,
            definition: &rendered.task_definition,
            container: &rendered.container,
            command,
            run_as,
            timeout: deploy.wait_timeout,
            poll: poll_setting(var),
        };
        report.emit(Event::StageStarted { what: "running the pre-deploy command" }, &[]).await;
        if let Err(refusal) = one_off::run(aws, &one_off, &mut signals::cancelled(), gha).await {
            if let Some(task) = refusal.task {
                let tasks = std::slice::from_ref(&task);
                stopped::print(tasks, gha);
                report.emit(Event::TasksStopped { tasks }, &[]).await;
            }
            let outcome = Outcome::Failed { reason: refusal.reason.clone() };
            let consequence = format!(
                "{} The new revision {} stays registered, unused.",
                if others.is_empty() { SERVICE_UNCHANGED } else { NO_SERVICE_CHANGED },
                crate::text::family_revision(&revision)
            );
            return Err(Failure {
                stage: "Deploy failed",
                error: anyhow::anyhow!("{}", refusal.reason),
                consequence,
                outcome,
            });
        }
        timings.mark("pre-deploy");
    }
    // The pre-deploy task may have run for long: the lease is still this run's, or nothing changes.
    let consequence = format!(
        "{} The new revision {} stays registered, unused.",
        if others.is_empty() { SERVICE_UNCHANGED } else { NO_SERVICE_CHANGED },
        crate::text::family_revision(&revision)
    );
    leases.verify(&aws.ecs).await.in_stage("Deploy refused", &consequence)?;

    let several = !others.is_empty();
    // A rolling first service has no traffic to put back before the others go back.
    let run = together::Run::new(1 + others.len(), matches!(deploy.strategy, StrategyPlan::Rolling));
    let release_of = |service, revision, previous| rollout::Release {
        cluster: &deploy.cluster,
        service,
        revision,
        previous,
        wait_timeout: deploy.wait_timeout,
        poll: poll_setting(var),
        cancel: Stop::new(signals::cancelled(), several.then(|| run.failures())),
        desired: None,
        started: Default::default(),
    };
    let release = rollout::Release {
        desired: deploy.new_desired_count.map(|n| (n, deploy.desired_count)),
        ..release_of(&deploy.service, &revision, &deploy.previous_task_definition_arn)
    };
    let releases: Vec<rollout::Release> = others
        .iter()
        .map(|(o, _)| release_of(&o.plan.service, &o.revision, &o.plan.previous_task_definition_arn))
        .collect();
    let (first, ends) = {
        let _group = gha.group(&group_title(deploy));
        let first = async {
            let mut ended = first_service(deploy, aws, &release, several.then_some(&run), report.clone(), gha).await;
            if !several {
                return ended;
            }
            if let Some((_, reason)) = ended.outcome.reason() {
                run.record(&deploy.service, &reason, gha);
            }
            run.traffic_is_back();
            run.rolled();
            // It succeeded: it goes back too if another service fails.
            if ended.outcome == Outcome::Succeeded {
                let mut log = crate::ecs::events::EventLog::default();
                ended.outcome =
                    together::settle_rolled_out(&aws.ecs, &release, &run, deploy.rollback, &mut log, gha).await;
            }
            ended
        };
        let rest = releases.iter().map(|r| together::deploy(&aws.ecs, r, &run, deploy.rollback, report.clone(), gha));
        tokio::join!(first, futures_util::future::join_all(rest))
    };
    let FirstEnd { outcome: first_outcome, table, mut events } = first;
    for end in &ends {
        events.extend(end.events.iter().cloned());
    }
    report.emit(Event::StrategiesEnded { events: &events }, &table).await;
    let first_end = together::ServiceEnd {
        service: deploy.service.clone(),
        revision: revision.clone(),
        previous: deploy.previous_task_definition_arn.clone(),
        outcome: first_outcome.clone(),
        events: Vec::new(),
    };
    output(gha, "services", &together::services_json(&first_end, &ends));
    let outcome =
        if several { together::overall(&first_outcome, &deploy.service, &ends, run.reason()) } else { first_outcome };
    timings.mark("deploy");
    if outcome != Outcome::Succeeded {
        // "It failed, why?": the new revisions' stopped tasks, their exit codes and last lines.
        let mut services = vec![deploy.service.as_str()];
        if let StrategyPlan::Canary(c) = &deploy.strategy {
            services.push(c.canary_service.as_str());
        }
        let cluster = deploy.cluster.as_str();
        let mut tasks = stopped::explain(aws, cluster, &services, &revision, &rendered.task_definition, gha).await;
        for (o, rendered) in &others {
            let name = [o.plan.service.as_str()];
            tasks.extend(stopped::explain(aws, cluster, &name, &o.revision, &rendered.task_definition, gha).await);
        }
        stopped::print(&tasks, gha);
        report.emit(Event::TasksStopped { tasks: &tasks }, &[]).await;
    }
    finish(outcome, deploy, gha)
}

/// How the first service's strategy ended.
struct FirstEnd {
    outcome: Outcome,
    /// The canary's step table (empty for rolling).
    table: Vec<crate::records::StepRecord>,
    /// What ECS said, newest first.
    events: Vec<String>,
}

/// The first service of the run, by its strategy, reporting as it goes.
async fn first_service(
    deploy: &DeployPlan,
    aws: &Aws,
    release: &rollout::Release<'_>,
    run: Option<&together::Run>,
    report: Report,
    gha: &Gha,
) -> FirstEnd {
    let inner = Both(progress::Log(gha), report);
    let mut progress = together::Tap { run, service: &deploy.service, gha, inner };
    match &deploy.strategy {
        StrategyPlan::Rolling => {
            let request = rollout::Rolling { release: release.clone(), rollback: deploy.rollback };
            match rollout::rolling(&aws.ecs, &request, &mut progress, gha).await {
                Ok((outcome, events)) => FirstEnd { outcome, table: Vec::new(), events: events.recent },
                Err(e) => FirstEnd {
                    outcome: Outcome::Failed {
                        reason: format!("{e:#}; {} may be mid-deployment: check it in the ECS console", deploy.service),
                    },
                    table: Vec::new(),
                    events: Vec::new(),
                },
            }
        }
        StrategyPlan::Canary(canary_plan) => {
            let run = canary::deploy::CanaryRun { aws, plan: canary_plan, release: release.clone() };
            let result = canary::deploy::run(run, &mut progress, gha).await;
            gha.info(&canary::table::text(&result.table));
            FirstEnd { outcome: result.outcome, table: result.table, events: result.recent_events }
        }
    }
}

/// The log group around the rollout: one service, or all of them (their lines interleave).
fn group_title(deploy: &DeployPlan) -> String {
    let (how, alone) = match &deploy.strategy {
        StrategyPlan::Rolling => ("rolling", "Rolling"),
        StrategyPlan::Canary(_) => ("canary", "Canary"),
    };
    if deploy.also.is_empty() {
        return format!("{alone} deploy of {}/{}", deploy.cluster, deploy.service);
    }
    let others: Vec<String> =
        deploy.also.iter().map(|a| format!("{}/{} (rolling)", deploy.cluster, a.service)).collect();
    format!("Deploy of {}/{} ({how}), {}", deploy.cluster, deploy.service, others.join(", "))
}

/// The end of a deploy: its status output, and for anything but success, the failure that ends the run.
fn finish(outcome: Outcome, deploy: &DeployPlan, gha: &Gha) -> Result<(), Failure> {
    let names: Vec<String> =
        deploy.services().iter().map(|(name, _, _)| format!("{}/{name}", deploy.cluster)).collect();
    let (stage, consequence) = match &outcome {
        Outcome::Succeeded => {
            output(gha, "status", outcome.status());
            return Ok(());
        }
        // A cancelled run sends services back without waiting: the job has seconds left. (A lone
        // canary's stable service was not changed before its promotion: it keeps the words below.)
        Outcome::RolledBack { .. }
            if *signals::cancelled().borrow()
                && (!deploy.also.is_empty() || matches!(deploy.strategy, StrategyPlan::Rolling)) =>
        {
            let one = names.len() == 1;
            let (were, their, s) = if one { ("was", "its", "") } else { ("were", "their", "s") };
            let first = if matches!(deploy.strategy, StrategyPlan::Canary(_)) { ", traffic first" } else { "" };
            let consequence = format!(
                "{} {were} sent back to {their} previous revision{s}{first}; ECS finishes the rollback (not waited \
                 for: the run was cancelled).",
                names.join(", ")
            );
            ("Deploy rolled back", consequence)
        }
        Outcome::RolledBack { .. } if deploy.also.is_empty() => (
            "Deploy rolled back",
            format!(
                "{} is back on {}, with all traffic.",
                names.join(""),
                crate::text::family_revision(&deploy.previous_task_definition_arn)
            ),
        ),
        Outcome::RolledBack { .. } => {
            ("Deploy rolled back", format!("{} are back on their previous revisions.", names.join(", ")))
        }
        Outcome::Failed { .. } if deploy.also.is_empty() => (
            "Deploy failed",
            format!("{} was left as it is (rollback: false, or the rollback did not finish).", names.join("")),
        ),
        Outcome::Failed { .. } => (
            "Deploy failed",
            format!(
                "Not every one of {} is back on its previous revision (rollback: false, or a rollback did not \
                 finish): the reason names each; check them in the ECS console.",
                names.join(", ")
            ),
        ),
    };
    let reason = outcome.reason().map(|(_, reason)| reason).unwrap_or_default();
    Err(Failure { stage, error: anyhow::anyhow!("{reason}"), consequence, outcome })
}
