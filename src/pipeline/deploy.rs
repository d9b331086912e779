//! The deploy stage of a run: the leases, the new revisions registered, the pre-deploy task, every
//! service by its strategy at the same time, and how the run ended.

use std::time::Duration;

use anyhow::{Context as _, Result};

use super::service;
use super::{Failure, InStage, Timings, output, poll_setting};
use crate::all_or_nothing::Run;
use crate::aws::Aws;
use crate::ecs::lease::{self, Lease, Leases};
use crate::ecs::taskdef::Rendered;
use crate::ecs::{pre_deploy, rollout, stopped, taskdef};
use crate::gha::Gha;
use crate::outcome::{Left, Outcome};
use crate::plan::{self, DeployPlan, ServicePlan, StrategyPlan};
use crate::progress::{self, Event, Progress, Tee};
use crate::signals;
use crate::text::family_revision;
use crate::workflow_run::GitHubContext;

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
    for planned in &deploy.services {
        // A preview's first deploy has no service to hold a lease on yet: ECS's CreateService
        // refuses a second service of its name, which keeps a second run from making it too.
        if planned.strategy.preview().is_some_and(|p| p.create.is_some()) {
            continue;
        }
        let resume = planned.strategy.native().is_some_and(|n| n.resume.is_some());
        let who = lease::Taker { by: &holder, hold, settle, resume };
        match lease::take(&aws.ecs, &planned.service, &planned.service_arn, &who, gha).await {
            Ok(lease) => leases.push(lease),
            Err(e) => {
                release_all(leases, aws, gha).await;
                return Err(e).in_stage("Deploy failed", unchanged(deploy, &[]));
            }
        }
    }
    let checked = match plan::recheck(deploy, aws).await {
        Ok(()) if *signals::cancelled().borrow() => Err(anyhow::anyhow!(signals::CANCELLED_REASON)),
        other => other,
    };
    if let Err(e) = checked {
        release_all(leases, aws, gha).await;
        return Err(e).in_stage("Deploy failed", unchanged(deploy, &[]));
    }
    Ok(leases)
}

/// Registers every service's new revision, runs the pre-deploy task, then deploys every service by
/// its strategy at the same time (`service::deploy_service`), holding the leases.
// Eight: the run's context is passed piece by piece until the pipeline has one deploy context.
#[expect(clippy::too_many_arguments, reason = "the pipeline's context, until one deploy context holds it")]
pub(super) async fn deploy_stage<R: Progress + Clone>(
    deploy: &DeployPlan,
    image_uri: &str,
    aws: &Aws,
    var: &impl Fn(&str) -> Option<String>,
    gha: &Gha,
    mut report: R,
    leases: &Leases,
    timings: &mut Timings,
) -> Result<Outcome, Failure> {
    // Every revision is registered before any service changes: a refused one changes nothing.
    let provenance = crate::provenance::Provenance::from_env(var).tags();
    let mut revisions: Vec<(String, Rendered)> = Vec::new();
    let mut new_revisions: Vec<String> = Vec::new();
    for planned in &deploy.services {
        let mut rendered = planned.rendered.clone();
        taskdef::set_image(&mut rendered, image_uri);
        let revision = match &planned.as_is {
            // A known revision as it is: promotion between environments, or back to a known good one.
            Some(known) => {
                gha.info(&format!("deploying {} as it is: nothing registered", family_revision(known)));
                known.clone()
            }
            None => {
                // The revision's own tags, and who and what deploys it.
                let tags = crate::provenance::carried(&planned.tags, &provenance);
                let registered = crate::ecs::register::register(&aws.ecs, &rendered.task_definition, &tags)
                    .await
                    .with_context(|| format!("service `{}`", planned.service))
                    .in_stage("Deploy failed", unchanged(deploy, &new_revisions))?;
                gha.info(&format!(
                    "registered {} for {} ({image_uri} in container {})",
                    family_revision(&registered),
                    planned.service,
                    rendered.container
                ));
                new_revisions.push(registered.clone());
                registered
            }
        };
        let (service, previous) = (&planned.service, &planned.previous_task_definition_arn);
        report.emit(Event::Registered { service, revision: &revision, previous }, &[]).await;
        revisions.push((revision, rendered));
    }
    let (first_revision, first_rendered) = &revisions[0];
    output(gha, "task-definition-arn", first_revision);
    output(gha, "previous-task-definition-arn", &deploy.first().previous_task_definition_arn);
    timings.mark("register");

    if let Some((command, run_as)) = &deploy.pre_deploy {
        let task = pre_deploy::PreDeployTask {
            cluster: &deploy.cluster,
            revision: first_revision,
            definition: &first_rendered.task_definition,
            container: &first_rendered.container,
            command,
            run_as,
            timeout: deploy.wait_timeout,
            poll: poll_setting(var),
        };
        report.emit(Event::StageStarted { what: "running the pre-deploy command" }, &[]).await;
        if let Err(refusal) = pre_deploy::run(aws, &task, &mut signals::cancelled(), gha).await {
            if let Some(task) = refusal.task {
                let tasks = std::slice::from_ref(&task);
                stopped::print(tasks, gha);
                report.emit(Event::TasksStopped { tasks }, &[]).await;
            }
            let outcome = Outcome::Failed { reason: refusal.reason.clone() };
            return Err(Failure {
                stage: "Deploy failed",
                error: anyhow::anyhow!("{}", refusal.reason),
                left: unchanged(deploy, &new_revisions),
                outcome,
            });
        }
        timings.mark("pre-deploy");
    }
    // The pre-deploy task may have run for long: the lease is still this run's, or nothing changes.
    leases.verify(&aws.ecs).await.in_stage("Deploy refused", unchanged(deploy, &new_revisions))?;

    // A canary or ECS's own strategy moves traffic: it must be back before any other service goes back.
    let shifts = deploy.services.iter().any(|s| s.strategy.canary().is_some() || s.strategy.native().is_some());
    let run = Run::new(deploy.services.len(), shifts);
    // One look at every service waited for serves them all (ten a call).
    let names: Vec<&str> = deploy.services.iter().map(|s| s.service.as_str()).collect();
    let reads = std::sync::Arc::new(crate::ecs::reads::Reads::new(aws.ecs.clone(), &deploy.cluster, &names));
    let turns = deploy.parallel.filter(|n| *n < deploy.services.len()).map(tokio::sync::Semaphore::new);
    let deploys = deploy.services.iter().zip(&revisions).map(|(planned, (revision, _))| {
        let release = rollout::Release {
            cluster: &deploy.cluster,
            service: &planned.service,
            revision,
            previous: &planned.previous_task_definition_arn,
            wait_timeout: deploy.wait_timeout,
            poll: poll_setting(var),
            cancel: run.stop(),
            desired: planned.new_desired_count.map(|n| (n, planned.desired_count)),
            started: Default::default(),
            reads: Some(reads.clone()),
        };
        let one = service::ServiceRun {
            aws,
            plan: planned,
            release,
            rollback: deploy.rollback,
            run: &run,
            turns: turns.as_ref(),
        };
        // The first service's events are the comment's status; every service's go to the log.
        let status = std::ptr::eq(planned, deploy.first()).then(|| report.clone());
        let mut progress = Tee(progress::Log(gha), ServiceReport { status, states: report.clone() });
        async move { service::deploy_service(one, &mut progress, gha).await }
    });
    let results = {
        let _group = gha.group(&group_title(deploy));
        futures_util::future::join_all(deploys).await
    };
    let table: Vec<_> = results.iter().flat_map(|r| r.table.iter().cloned()).collect();
    let events: Vec<String> = results.iter().flat_map(|r| r.events.iter().cloned()).collect();
    report.emit(Event::StrategiesEnded { events: &events }, &table).await;
    output(gha, "services", &service::services_json(&results));
    let outcome = service::overall(&results, run.reason());
    timings.mark("deploy");
    if outcome == Outcome::Succeeded {
        let each: Vec<String> = deploy
            .services
            .iter()
            .zip(&revisions)
            .map(|(s, (revision, _))| format!("{}/{} → {}", deploy.cluster, s.service, family_revision(revision)))
            .collect();
        timings.deployed(format!("{}, {}", each.join(", "), deploy.first().strategy.label()));
        // Each service says who deployed what on it, as its new revision does.
        for (planned, (revision, _)) in deploy.services.iter().zip(&revisions) {
            let count = planned.new_desired_count.unwrap_or(planned.desired_count);
            let tags = crate::provenance::on_service(&provenance, family_revision(revision), Some(count));
            // A service this run made (a preview's first deploy) was planned before it had an ARN.
            let arn = match planned.service_arn.as_str() {
                "" => crate::ecs::service::describe(&aws.ecs, &deploy.cluster, &planned.service)
                    .await
                    .map(|s| s.service_arn().unwrap_or_default().to_string())
                    .unwrap_or_default(),
                known => known.to_string(),
            };
            if let Err(e) = crate::ecs::service::tag(&aws.ecs, &arn, tags).await {
                gha.warning(&format!("{e:#}; the deploy itself succeeded"));
            }
        }
        move_schedules(deploy, &revisions, aws, gha).await;
        if let Some(keep) = deploy.keep_revisions {
            let mut families: Vec<String> = revisions
                .iter()
                .filter_map(|(revision, _)| family_revision(revision).rsplit_once(':').map(|(f, _)| f.to_string()))
                .collect();
            families.sort();
            families.dedup();
            crate::ecs::prune::prune(aws, &deploy.cluster, &families, keep, gha).await;
        }
    }
    if let Outcome::Paused(at) = &outcome {
        output(gha, "service-deployment-arn", &at.service_deployment_arn);
        output(gha, "hook-id", &at.hook_id);
        output(gha, "paused-until", at.expires.as_deref().unwrap_or_default());
    }
    if !matches!(outcome, Outcome::Succeeded | Outcome::Paused(_)) {
        // "It failed, why?": the new revisions' stopped tasks, their exit codes and last lines.
        let cluster = deploy.cluster.as_str();
        let mut tasks = Vec::new();
        for (planned, (revision, rendered)) in deploy.services.iter().zip(&revisions) {
            let mut names = vec![planned.service.as_str()];
            names.extend(planned.strategy.canary().map(|c| c.canary_service.as_str()));
            tasks.extend(stopped::explain(aws, cluster, &names, revision, &rendered.task_definition, gha).await);
        }
        stopped::print(&tasks, gha);
        report.emit(Event::TasksStopped { tasks: &tasks }, &[]).await;
    }
    finish(outcome, deploy)
}

/// Moves each scheduled task of the plan to the revision registered for its family. A refused move
/// is a warning with the command that makes it: the services are deployed, and the schedule still
/// starts the revision it did.
async fn move_schedules(deploy: &DeployPlan, revisions: &[(String, Rendered)], aws: &Aws, gha: &Gha) {
    for s in &deploy.scheduled {
        let new = revisions
            .iter()
            .map(|(r, _)| r)
            .find(|r| family_revision(r).rsplit_once(':').is_some_and(|(f, _)| f == s.family));
        let Some(new) = new else { continue };
        match crate::schedules::move_to(aws, s, new).await {
            Ok(()) => gha.info(&format!("scheduled task: {} now runs {}", s.rule, family_revision(new))),
            Err(e) => gha.warning(&format!(
                "{e:#}; the deploy itself succeeded and the schedule still starts the revision it did. Point it at the new one with: aws events put-targets --rule {} --targets (target {} with EcsParameters.TaskDefinitionArn {new})",
                s.rule,
                s.target.id()
            )),
        }
    }
}

/// What a failure before any service changed leaves: every service as it was, and the revisions
/// registered for it, unused.
fn unchanged(deploy: &DeployPlan, registered: &[String]) -> Left {
    let registered = registered.iter().map(|r| family_revision(r).to_string()).collect();
    Left::Unchanged { services: deploy.services.len(), registered }
}

/// What the report hears from one service: the first service's events are the comment's status,
/// every service's state is its row (a service without a row, the first, has none to update).
struct ServiceReport<R> {
    status: Option<R>,
    states: R,
}

impl<R: Progress> Progress for ServiceReport<R> {
    async fn emit(&mut self, event: Event<'_>, table: &[crate::records::StepRecord]) {
        match event {
            Event::ServiceState { .. } => self.states.emit(event, table).await,
            _ => self.status.emit(event, table).await,
        }
    }
}

/// The log group around the rollout: one service, or all of them (their lines interleave).
fn group_title(deploy: &DeployPlan) -> String {
    let how = |s: &ServicePlan| match &s.strategy {
        StrategyPlan::Rolling => "rolling",
        StrategyPlan::Canary(_) => "canary",
        StrategyPlan::Native(_) => "ECS-run",
        StrategyPlan::Preview(_) => "preview",
    };
    if let [one] = deploy.services.as_slice() {
        let how = how(one);
        let capitalised = how[..1].to_uppercase() + &how[1..];
        return format!("{capitalised} deploy of {}/{}", deploy.cluster, one.service);
    }
    let all: Vec<String> =
        deploy.services.iter().map(|s| format!("{}/{} ({})", deploy.cluster, s.service, how(s))).collect();
    format!("Deploy of {}", all.join(", "))
}

/// The end of a deploy: success, a pause for approval, or the failure that ends the run and what it
/// left.
fn finish(outcome: Outcome, deploy: &DeployPlan) -> Result<Outcome, Failure> {
    let services: Vec<String> = deploy.services.iter().map(|s| format!("{}/{}", deploy.cluster, s.service)).collect();
    let canary = deploy.services.iter().any(|s| s.strategy.canary().is_some());
    let (stage, left) = match &outcome {
        Outcome::Succeeded | Outcome::Paused(_) => return Ok(outcome),
        // A cancelled run sends services back without waiting: the job has seconds left. (A lone
        // canary's stable service was not changed before its promotion: it keeps the words below.)
        Outcome::RolledBack { .. } if *signals::cancelled().borrow() && (deploy.several() || !canary) => {
            ("Deploy rolled back", Left::SentBack { services, traffic_first: canary })
        }
        Outcome::RolledBack { .. } if !deploy.several() => {
            let revision = family_revision(&deploy.first().previous_task_definition_arn).to_string();
            ("Deploy rolled back", Left::BackOn { service: services.concat(), revision })
        }
        Outcome::RolledBack { .. } => ("Deploy rolled back", Left::AllBack { services }),
        Outcome::Failed { .. } => ("Deploy failed", Left::NotBack { services }),
    };
    let reason = outcome.reason().map(|(_, reason)| reason).unwrap_or_default();
    Err(Failure { stage, error: anyhow::anyhow!("{reason}"), left, outcome })
}
