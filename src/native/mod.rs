//! ECS's own BLUE_GREEN, LINEAR and CANARY as a strategy: the new revision is sent with the action's
//! PAUSE hooks, the service deployment is watched stage by stage, each pause is answered CONTINUE or
//! ROLLBACK after the gates judged it, the shifts and the bake are judged as they run (a failure stops
//! the deployment with a rollback), ECS's own rollback is reported with its reason, and a cancellation
//! rolls back (ECS puts traffic back on blue first). The service's configuration is put back after.

mod judging;
mod pauses;
mod undo;
mod watch;

use std::time::{Duration, SystemTime};

use crate::all_or_nothing::Run;
use crate::aws::Aws;
use crate::ecs::deployments;
use crate::ecs::poll::{Check, Poll, Polled, poll_until};
use crate::ecs::rollout::Release;
use crate::ecs::service;
use crate::gha::Gha;
use crate::outcome::{Outcome, PausedAt};
use crate::plan::NativePlan;
use crate::progress::{Event, Progress};
use crate::records::StepRecord;
use watch::Watch;

pub(crate) struct NativeRun<'a> {
    pub(crate) aws: &'a Aws,
    pub(crate) plan: &'a NativePlan,
    pub(crate) release: Release<'a>,
    pub(crate) run: &'a Run,
}

pub(crate) struct NativeResult {
    pub(crate) outcome: Outcome,
    /// ECS's production shifts, as the canary's step table.
    pub(crate) table: Vec<StepRecord>,
}

/// How watching ended, before the configuration is put back.
enum End {
    Done(Outcome),
    /// Stopped for people at the approval pause: the hooks stay (the deployment waits at one).
    Paused(Box<PausedAt>),
    /// Something failed before ECS had a deployment to roll back: the pipeline restores the service.
    NotStarted(String),
}

/// Deploys the release through ECS's own strategy, telling `progress` what happens.
pub(crate) async fn run(mut r: NativeRun<'_>, progress: &mut impl Progress, gha: &Gha) -> NativeResult {
    let mut table: Vec<StepRecord> =
        r.plan.steps.iter().map(|s| StepRecord::pending(s.weight, s.bake, s.canary_tasks)).collect();
    let end = deploy(&mut r, &mut table, progress, gha).await;
    if let End::Paused(at) = end {
        gha.info(&format!("{}: stopped for approval. {}", r.release.service, at.how_to_answer()));
        return NativeResult { outcome: Outcome::Paused(at), table };
    }
    if !r.plan.pauses.is_empty() {
        // The pauses were for this deploy: a later one (the console, another tool) must not stop
        // at them with nobody judging.
        let (ecs, cluster, name) = (&r.aws.ecs, r.release.cluster, r.release.service);
        let back = service::update_configured(ecs, cluster, name, None, None, Some(r.plan.configuration.clone()));
        if let Err(e) = back.await {
            let what = format!(
                "the service's deployment configuration still has this run's PAUSE hooks ({}); a later deployment \
                 would stop at them and roll back when they time out. Put the configuration back without them: {e:#}",
                r.plan.pauses.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
            );
            progress.emit(Event::LeftBehind { what: &what }, &table).await;
        }
    }
    let outcome = match end {
        End::Done(outcome) => outcome,
        End::NotStarted(reason) => Outcome::Failed { reason },
        End::Paused(at) => Outcome::Paused(at),
    };
    NativeResult { outcome, table }
}

async fn deploy(r: &mut NativeRun<'_>, table: &mut [StepRecord], progress: &mut impl Progress, gha: &Gha) -> End {
    let plan = r.plan;
    if let Some(point) = &plan.resume {
        let answer = if point.proceed { "continue after the gates judge the paused window" } else { "roll back" };
        gha.info(&format!(
            "{}: answering the pause {} of service deployment {} ({answer})",
            r.release.service, point.hook, point.arn
        ));
        return Watch::resumed(r, point, table).follow(table, progress, gha).await;
    }
    let release = &r.release;
    let started = SystemTime::now();
    let config = pauses::with_pauses(&plan.configuration, &plan.pauses, plan.pause_timeout_minutes);
    let tasks = release.count_for(release.revision);
    let update = service::update_configured(
        &r.aws.ecs,
        release.cluster,
        release.service,
        Some(release.revision),
        tasks,
        Some(config),
    );
    if let Err(e) = update.await {
        return End::NotStarted(format!("{e:#}"));
    }
    let event =
        Event::RolloutStarted { service: release.service, revision: release.revision, timeout: release.wait_timeout };
    progress.emit(event, table).await;
    let arn = match find(r, started).await {
        Ok(arn) => arn,
        Err(e) => return End::NotStarted(e),
    };
    gha.info(&format!("{}: ECS runs {} as service deployment {arn}", release.service, plan.strategy));
    Watch::new(r, arn, started).follow(table, progress, gha).await
}

/// The service deployment the UpdateService started (ECS lists it within moments).
async fn find(r: &NativeRun<'_>, since: SystemTime) -> Result<String, String> {
    let (ecs, cluster, name) = (&r.aws.ecs, r.release.cluster, r.release.service);
    let polled = poll_until(Duration::from_secs(60), Poll::default(), None, async || {
        Ok(match deployments::started_since(ecs, cluster, name, since).await? {
            Some(arn) => Check::Done(arn),
            None => Check::NotYet(()),
        })
    })
    .await;
    match polled {
        Ok(Polled::Done(arn)) => Ok(arn),
        Ok(_) => Err(format!("ECS listed no service deployment of {name} within 60s of the update")),
        Err(e) => Err(format!("{e:#}")),
    }
}
