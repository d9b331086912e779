//! The I/O around the canary controller: scaling the canary and stable services, shifting weights,
//! checking gates, and the clock. The controller decides; this file only carries its actions out and
//! reports what it saw.

use std::time::SystemTime;

use anyhow::{Result, anyhow};
use tokio::time::Instant;

use super::controller::{Action, Controller, Judging, Observation};
use super::gates;
use crate::all_or_nothing::Run;
use crate::aws::Aws;
use crate::config::duration;
use crate::ecs::events::EventLog;
use crate::ecs::poll::{Check, Heartbeat, Polled, poll_until};
use crate::ecs::rollout::{self, Release, Wait};
use crate::ecs::service;
use crate::gha::Gha;
use crate::listener;
use crate::outcome::Outcome;
use crate::plan::CanaryPlan;
use crate::progress::{Event, Progress};
use crate::records::StepRecord;
use crate::text::family_revision;

pub(crate) struct CanaryRun<'a> {
    pub(crate) aws: &'a Aws,
    pub(crate) plan: &'a CanaryPlan,
    /// The new revision for the stable service, and how long to wait.
    pub(crate) release: Release<'a>,
    /// The run it is part of: its abort is the run's failure, and frees the other services' undo.
    pub(crate) run: &'a Run,
}

pub(crate) struct CanaryResult {
    pub(crate) outcome: Outcome,
    pub(crate) table: Vec<StepRecord>,
    /// What ECS said about both services, newest first.
    pub(crate) recent_events: Vec<String>,
}

/// Runs the canary to its end, telling `progress` what happens; `gha` prints ECS's own events.
pub(crate) async fn run(mut r: CanaryRun<'_>, progress: &mut impl Progress, gha: &Gha) -> CanaryResult {
    let plan = r.plan;
    let judging = Judging { failure_limit: plan.gates.failure_limit, inconclusive_fails: plan.gates.min_requests > 0 };
    let mut controller = Controller::new(plan.steps.clone(), plan.check_interval).judging(judging);
    let http = reqwest::Client::new();
    let gate_ctx = gates::GateContext {
        aws: r.aws,
        gates: &plan.gates,
        canary_target_group: &plan.canary_target_group,
        stable_target_group: &plan.stable_target_group,
        http: &http,
    };
    // Only what happens from now on is news (a log that could not read them yet learns them first).
    let mut canary_log = match service::describe(&r.aws.ecs, r.release.cluster, &plan.canary_service).await {
        Ok(svc) => EventLog::starting_at(&svc),
        Err(_) => EventLog::default(),
    };
    let mut stable_log = match service::describe(&r.aws.ecs, r.release.cluster, r.release.service).await {
        Ok(svc) => EventLog::starting_at(&svc),
        Err(_) => EventLog::default(),
    };
    let total = plan.steps.len();
    let mut shifted: Option<(Instant, SystemTime)> = None;
    let mut first_shift: Option<SystemTime> = None;
    let mut step_started = Instant::now();
    let mut observation = Observation::Start;
    // The canary targets healthy when the step's traffic shifted: what its target-health gate watches.
    let mut watched: Vec<String> = Vec::new();
    loop {
        // After the promotion there is nothing to abort: the clean-up finishes either way (a
        // promotion just seen complete included).
        let promoted = matches!(observation, Observation::Promoted);
        if r.release.cancel.is_set() && !controller.is_aborting() && !controller.is_cleaning_up() && !promoted {
            if r.release.cancel.by_signal() {
                progress.emit(Event::Cancelled, &controller.table).await;
            }
            observation = stopped(&r);
        }
        let step = controller.current_step();
        let label = step.map(|i| format!("step {}/{total}", i + 1)).unwrap_or_else(|| "canary".into());
        let action = controller.next(observation);
        // A step that passed without a gate's verdict is not a pass on evidence: say so.
        for (i, gate) in controller.take_unjudged() {
            let what = match gate.value.as_str() {
                gates::NO_REQUESTS_YET => format!(
                    "step {}/{total}: no request reached {} during the step, so its {} was not measured",
                    i + 1,
                    plan.canary_service,
                    if gate.gate == "latency" { "response time" } else { "error rate" }
                ),
                _ => format!(
                    "step {}/{total}: {}; the step passed without its verdict (set min-requests to fail such a step \
                     instead, or give the step more traffic or a longer bake)",
                    i + 1,
                    gate.describe("could not judge the step")
                ),
            };
            progress.emit(Event::NoEvidence { what: &what }, &controller.table).await;
        }
        observation = match action {
            Action::ScaleCanary { step: i, tasks } => {
                step_started = Instant::now();
                let s = &plan.steps[i];
                let event = Event::StepStarted {
                    step: i,
                    total,
                    weight: s.weight,
                    bake: s.bake,
                    tasks,
                    revision: r.release.revision,
                    service: &plan.canary_service,
                };
                progress.emit(event, &controller.table).await;
                done(scale(r.aws, r.release.cluster, &plan.canary_service, Some(r.release.revision), tasks).await)
            }
            Action::WaitCanaryReady { tasks } => {
                let (observation, healthy) = wait_ready(&mut r, tasks, &mut canary_log, progress).await;
                watched = healthy;
                observation
            }
            Action::PrestartCanary { step: next, tasks } => {
                let event = Event::TasksPrestarted {
                    label: &label,
                    next: next + 1,
                    tasks,
                    revision: r.release.revision,
                    service: &plan.canary_service,
                };
                progress.emit(event, &controller.table).await;
                done(scale(r.aws, r.release.cluster, &plan.canary_service, Some(r.release.revision), tasks).await)
            }
            Action::SetWeights { stable, canary } => {
                let must = controller.is_aborting() || controller.is_cleaning_up();
                let result = set_weights(&r, (stable, canary), must).await;
                if result.is_ok() {
                    progress.emit(Event::WeightsSet { label: &label, stable, canary }, &controller.table).await;
                    if canary > 0 && !controller.is_aborting() {
                        shifted = Some((Instant::now(), SystemTime::now()));
                        first_shift.get_or_insert_with(SystemTime::now);
                    }
                }
                if controller.is_aborting() {
                    // Only after the traffic call: a slow GitHub must never delay it.
                    let reason = controller.abort_reason().unwrap_or_default();
                    r.run.aborted(r.release.service, reason, result.is_ok(), gha);
                    progress.emit(Event::Aborting { traffic_back: result.is_ok(), reason }, &controller.table).await;
                }
                done(result)
            }
            Action::CheckGatesAfter { step: i, wait } => {
                if crate::clock::sleep_or_cancel(wait, r.release.cancel.flag()).await {
                    stopped(&r)
                } else {
                    let (at, since) = shifted.unwrap_or((Instant::now(), SystemTime::now()));
                    let window = gates::Window { since, first_shift: first_shift.unwrap_or(since) };
                    let results = gates::check(&gate_ctx, plan.steps[i].canary_tasks, &watched, window).await;
                    let elapsed = at.elapsed();
                    let bake = plan.steps[i].bake;
                    let event = Event::GatesChecked { label: &label, results: &results, elapsed, bake };
                    progress.emit(event, &controller.table).await;
                    controller.note_elapsed(i, step_started.elapsed());
                    Observation::Checked { results, elapsed }
                }
            }
            Action::Promote => {
                let event = Event::Promoting { service: r.release.service, revision: r.release.revision };
                progress.emit(event, &controller.table).await;
                // A cancellation mid-promotion aborts it: GitHub kills the run 10 s after its
                // first signal, and a promotion takes minutes on AWS.
                let mut cancel = r.release.cancel.clone();
                let waited =
                    update_and_wait(&r, r.release.revision, Some(cancel.flag()), &mut stable_log, progress, gha);
                match waited.await {
                    Ok(Some(())) => Observation::Promoted,
                    // A promotion that completed before the wait looked again is a success with
                    // clean-up left, not something to roll back.
                    Ok(None) if promoted_already(&r).await => Observation::Promoted,
                    Ok(None) => stopped(&r),
                    Err(e) => Observation::Failed(format!("{e:#}")),
                }
            }
            Action::ScaleCanaryToZero => {
                let event =
                    Event::ScalingCanaryToZero { service: &plan.canary_service, aborting: controller.is_aborting() };
                progress.emit(event, &controller.table).await;
                let result = scale(r.aws, r.release.cluster, &plan.canary_service, None, 0).await;
                if result.is_ok() {
                    say_what_drains(&r, gha).await;
                }
                done(result)
            }
            Action::RestoreStable => {
                let event = Event::RestoringStable { service: r.release.service, revision: r.release.previous };
                progress.emit(event, &controller.table).await;
                let restored = if cancelled(&r) {
                    // One call, no wait: the run has seconds left, ECS rolls the service back itself.
                    r.release.send_to(&r.aws.ecs, r.release.previous).await.map(|_| {
                        gha.info(&format!(
                            "cancelled: not waiting for {} to be back on {} (ECS rolls it back)",
                            r.release.service,
                            family_revision(r.release.previous)
                        ));
                    })
                } else {
                    update_and_wait(&r, r.release.previous, None, &mut stable_log, progress, gha).await.map(|_| ())
                };
                done(restored)
            }
            Action::Finish(outcome) => {
                for what in controller.left_behind() {
                    progress.emit(Event::LeftBehind { what }, &controller.table).await;
                }
                let mut recent = canary_log.recent;
                recent.extend(stable_log.recent);
                return CanaryResult { outcome, table: controller.table, recent_events: recent };
            }
        };
    }
}

/// The run was cancelled: undo with calls only, no waits (GitHub kills it 10 s after the signal).
/// One more look at the stable service: its promotion to the new revision is complete.
async fn promoted_already(r: &CanaryRun<'_>) -> bool {
    let Ok(svc) = service::describe(&r.aws.ecs, r.release.cluster, r.release.service).await else { return false };
    let ours = r.release.ours();
    rollout::judge(&svc, r.release.revision, ours.as_ref(), &[]) == Some(Wait::Stable)
}

fn cancelled(r: &CanaryRun<'_>) -> bool {
    r.release.cancel.by_signal()
}

/// What ended a wait early: a signal (`Cancelled`), or another service's failure, which aborts the
/// canary like its own gate failing would, with that reason.
fn stopped(r: &CanaryRun<'_>) -> Observation {
    match r.release.cancel.sibling_failed() {
        Some(reason) if !r.release.cancel.by_signal() => Observation::Failed(reason),
        _ => Observation::Cancelled,
    }
}

fn done(result: Result<()>) -> Observation {
    match result {
        Ok(()) => Observation::Done,
        Err(e) => Observation::Failed(format!("{e:#}")),
    }
}

async fn scale(aws: &Aws, cluster: &str, name: &str, revision: Option<&str>, tasks: i32) -> Result<()> {
    service::update(&aws.ecs, cluster, name, revision, Some(tasks)).await.map(|_| ())
}

/// Weights in one call. When they must be set (an abort's traffic call, the reset after promotion),
/// the call is retried for about 20 s and the weights are read back; if they are still not right the
/// error says where traffic is and how to put it back.
async fn set_weights(r: &CanaryRun<'_>, weights: (i32, i32), must: bool) -> Result<()> {
    let (stable, canary) = (&r.plan.stable_target_group.arn, &r.plan.canary_target_group.arn);
    let (elb, source) = (&r.aws.elb, &r.plan.traffic);
    if !must {
        return listener::set_weights(elb, source, stable, canary, weights).await;
    }
    // Judged by the read-back: a refused call (a missing permission, say) that finds the weights
    // already where they must be, as when an abort comes before the first shift, is done.
    let set = crate::retry::for_up_to(crate::retry::MUST_SUCCEED_FOR, async || {
        let set = listener::set_weights(elb, source, stable, canary, weights).await;
        let now = listener::weights(&listener::actions(elb, source).await?, stable, canary, source)?;
        match set {
            _ if now == weights => Ok(()),
            Err(e) => Err(e),
            Ok(()) => Err(anyhow!("the load balancer reads back {}/{}", now.0, now.1)),
        }
    })
    .await;
    let Err(error) = set else { return Ok(()) };
    let now = match listener::actions(elb, source).await.and_then(|a| listener::weights(&a, stable, canary, source)) {
        Ok((s, c)) => format!("traffic is split stable {s} / canary {c}"),
        Err(e) => format!("where traffic is could not be read either ({e:#})"),
    };
    let commands = listener::restore_commands(source, stable, canary, r.release.cluster, &r.plan.canary_service);
    Err(anyhow!("{error:#}; {now}. Put traffic back on the stable service with:\n{commands}"))
}

/// Until the canary service runs `tasks` tasks of the new revision and its target group reports
/// that many healthy targets; with them, the healthy targets' ids.
async fn wait_ready(
    r: &mut CanaryRun<'_>,
    tasks: i32,
    log: &mut EventLog,
    progress: &mut impl Progress,
) -> (Observation, Vec<String>) {
    let (aws, cluster, plan, revision) = (r.aws, r.release.cluster, r.plan, r.release.revision);
    let mut cancel = r.release.cancel.clone();
    let mut heartbeat = Heartbeat::new();
    let timeout = r.release.wait_timeout;
    let polled = poll_until(timeout, r.release.poll, Some(cancel.flag()), async || {
        let svc = service::describe(&aws.ecs, cluster, &plan.canary_service).await?;
        if log.tell_new(&svc, progress).await {
            heartbeat.said();
        }
        let primary = svc.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
        let running =
            primary.filter(|d| d.task_definition() == Some(revision)).map(|d| d.running_count()).unwrap_or_default();
        let targets = gates::healthy_targets(aws, &plan.canary_target_group.arn).await?;
        let healthy = i32::try_from(targets.healthy.len()).unwrap_or(i32::MAX);
        if running >= tasks && healthy >= tasks {
            return Ok(Check::Done(targets.healthy));
        }
        if let Some(elapsed) = heartbeat.due() {
            let seen = format!("{running}/{tasks} running, {healthy}/{tasks} healthy");
            progress.emit(Event::Waiting { what: &plan.canary_service, seen: &seen, elapsed, timeout }, &[]).await;
        }
        Ok(Check::NotYet((running, healthy, targets.reasons)))
    })
    .await;
    let observation = match polled {
        Ok(Polled::Done(healthy)) => return (Observation::CanaryReady, healthy),
        Ok(Polled::Cancelled) => stopped(r),
        Ok(Polled::TimedOut(seen)) => {
            let mut last_state = String::from("not looked at");
            if let Some((running, healthy, reasons)) = seen {
                last_state = format!("{running}/{tasks} running, {healthy}/{tasks} healthy");
                if !reasons.is_empty() {
                    last_state += &format!(" ({})", reasons.join("; "));
                }
            }
            Observation::Failed(format!(
                "{} did not get {tasks} healthy task(s) within wait-timeout {}: {last_state}",
                plan.canary_service,
                duration::format(r.release.wait_timeout)
            ))
        }
        Err(e) => Observation::Failed(format!("{e:#}")),
    };
    (observation, Vec::new())
}

/// After the canary's scale-in: ECS deregisters each of its tasks, lets it drain for the target
/// group's deregistration delay (requests in flight finish; no new one arrives, the weight is 0),
/// and only then stops it. The run does not wait for that; it says what is draining and for how long.
/// Counted from the target group, not the service's `runningCount`: ECS takes a draining task out
/// of that count (it is DEACTIVATING) a moment after the scale-in, while its target still drains.
async fn say_what_drains(r: &CanaryRun<'_>, gha: &Gha) {
    let (name, tg) = (&r.plan.canary_service, &r.plan.canary_target_group);
    // Every target still in the group is leaving it: deregistered and draining, or about to be.
    let Ok(targets) = gates::healthy_targets(r.aws, &tg.arn).await else { return };
    let leaving = targets.healthy.len() + targets.reasons.len();
    if leaving == 0 {
        return;
    }
    let delay = match listener::deregistration_delay(&r.aws.elb, &tg.arn).await {
        Ok(d) => duration::format(d),
        Err(_) => "its deregistration delay".into(),
    };
    gha.info(&format!(
        "{name}: {leaving} task(s) drain from {} for up to {delay} (the target group's deregistration delay), then \
         ECS stops them; not waited for",
        tg.name
    ));
}

/// The stable service to `revision`, waiting until it is stable; `None` when `cancel` (if given)
/// ended the wait first.
async fn update_and_wait(
    r: &CanaryRun<'_>,
    revision: &str,
    cancel: Option<&mut tokio::sync::watch::Receiver<bool>>,
    log: &mut EventLog,
    progress: &mut impl Progress,
    gha: &Gha,
) -> Result<Option<()>> {
    let ours = r.release.send_to(&r.aws.ecs, revision).await?;
    match rollout::wait(&r.release.watch(&r.aws.ecs), revision, ours.as_ref(), cancel, log, progress, gha).await? {
        Wait::Stable => Ok(Some(())),
        Wait::TimedOut => Err(anyhow!(
            "{} did not become stable on {} within wait-timeout {}",
            r.release.service,
            family_revision(revision),
            duration::format(r.release.wait_timeout)
        )),
        Wait::Failed { reason, .. } => Err(anyhow!("{} on {}: {reason}", r.release.service, family_revision(revision))),
        Wait::Cancelled | Wait::Stopped(_) => Ok(None),
    }
}
