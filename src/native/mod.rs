//! ECS's own BLUE_GREEN, LINEAR and CANARY as a strategy: the new revision is sent with the action's
//! PAUSE hooks, the service deployment is watched stage by stage, each pause is answered CONTINUE or
//! ROLLBACK after the gates judged it, the shifts and the bake are judged as they run (a failure stops
//! the deployment with a rollback), ECS's own rollback is reported with its reason, and a cancellation
//! rolls back (ECS puts traffic back on blue first). The service's configuration is put back after.

mod pauses;

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::all_or_nothing::Run;
use crate::aws::Aws;
use crate::canary::controller::{Judge, Judgement, Judging};
use crate::canary::gates::{self, GateContext, Window};
use crate::config::duration;
use crate::ecs::deployments::{self, Seen};
use crate::ecs::poll::{Check, Poll, Polled, poll_until};
use crate::ecs::rollout::Release;
use crate::ecs::service;
use crate::gha::Gha;
use crate::outcome::Outcome;
use crate::plan::NativePlan;
use crate::progress::{Event, Progress};
use crate::records::{GateResult, StepRecord, StepResult};
use crate::retry;
use crate::signals::CANCELLED_REASON;

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
    /// Something failed before ECS had a deployment to roll back: the pipeline restores the service.
    NotStarted(String),
}

/// Deploys the release through ECS's own strategy, telling `progress` what happens.
pub(crate) async fn run(mut r: NativeRun<'_>, progress: &mut impl Progress, gha: &Gha) -> NativeResult {
    let mut table: Vec<StepRecord> =
        r.plan.steps.iter().map(|s| StepRecord::pending(s.weight, s.bake, s.canary_tasks)).collect();
    let end = deploy(&mut r, &mut table, progress, gha).await;
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
    };
    NativeResult { outcome, table }
}

async fn deploy(r: &mut NativeRun<'_>, table: &mut [StepRecord], progress: &mut impl Progress, gha: &Gha) -> End {
    let (plan, release) = (r.plan, &r.release);
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

/// What the watch remembers between looks.
struct Watch<'r, 'a> {
    r: &'r mut NativeRun<'a>,
    arn: String,
    /// When blue last had all production traffic for sure (the relative gates' baseline before a shift).
    started: SystemTime,
    last: Option<Seen>,
    /// The last production shift: when, and green's share then.
    shifted: Option<(Instant, SystemTime, f64)>,
    judge: Judge,
    /// Pauses already answered (ECS may still list one for a moment).
    answered: Vec<String>,
    /// Why the action rolled back, when it did.
    ours: Option<String>,
    next_check: Instant,
    http: reqwest::Client,
}

impl<'r, 'a> Watch<'r, 'a> {
    fn new(r: &'r mut NativeRun<'a>, arn: String, started: SystemTime) -> Self {
        let judging =
            Judging { failure_limit: r.plan.gates.failure_limit, inconclusive_fails: r.plan.gates.min_requests > 0 };
        let judge = Judge::new(judging, r.plan.check_interval);
        Watch {
            r,
            arn,
            started,
            last: None,
            shifted: None,
            judge,
            answered: Vec::new(),
            ours: None,
            next_check: Instant::now(),
            http: reqwest::Client::new(),
        }
    }

    async fn follow(mut self, table: &mut [StepRecord], progress: &mut impl Progress, gha: &Gha) -> End {
        let budget = self.r.plan.steps.iter().fold(self.r.release.wait_timeout, |t, s| t.saturating_add(s.bake));
        let deadline = Instant::now().checked_add(budget).unwrap_or_else(Instant::now);
        let mut failed_looks = 0;
        loop {
            if self.r.release.cancel.is_set()
                && self.ours.is_none()
                && let Some(end) = self.stop(table, progress, gha).await
            {
                return end;
            }
            let seen = match deployments::describe(&self.r.aws.ecs, &self.arn).await {
                Ok(seen) => seen,
                Err(e) => {
                    failed_looks += 1;
                    if failed_looks >= retry::CONSECUTIVE_FAILURES && self.ours.is_none() {
                        let why =
                            format!("the service deployment could not be read {failed_looks} times in a row: {e:#}");
                        self.roll_back(why, None, table, progress, gha).await;
                    }
                    crate::clock::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            failed_looks = 0;
            self.observe(&seen, table, progress).await;
            if seen.ended() {
                return End::Done(self.ended(&seen, table, progress).await);
            }
            if Instant::now() >= deadline && self.ours.is_none() {
                let why = format!(
                    "ECS's {} did not finish within wait-timeout {} plus its bakes",
                    self.r.plan.strategy,
                    duration::format(self.r.release.wait_timeout)
                );
                self.roll_back(why, seen.paused.first().map(|(id, _)| id.clone()), table, progress, gha).await;
            }
            if self.ours.is_none() && !seen.rolling_back() {
                self.judge_now(&seen, table, progress, gha).await;
            }
            let wait = Poll::default()
                .max
                .min(self.next_check.saturating_duration_since(Instant::now()).max(Duration::from_millis(500)));
            // Once stopping, the stop flag stays set: a plain sleep, never a busy loop.
            if self.r.release.cancel.is_set() {
                crate::clock::sleep(wait).await;
            } else {
                crate::clock::sleep_or_cancel(wait, self.r.release.cancel.flag()).await;
            }
        }
    }

    /// Says what changed since the last look: the stage, green's shares, a pause.
    async fn observe(&mut self, seen: &Seen, table: &mut [StepRecord], progress: &mut impl Progress) {
        let before = self.last.replace(seen.clone());
        let moved = before.as_ref().is_none_or(|b| b.production != seen.production);
        if moved && seen.production > 0.0 && !seen.rolling_back() {
            self.shifted = Some((Instant::now(), SystemTime::now(), seen.production));
            self.judge.new_window();
            self.next_check = Instant::now() + self.r.plan.check_interval;
            // The shift that reached this share starts its row; the rows before it passed.
            let at = table.iter().position(|row| f64::from(row.weight) + 0.5 >= seen.production);
            for (i, row) in table.iter_mut().enumerate() {
                match at {
                    Some(at) if i < at && row.result != StepResult::Failed => row.result = StepResult::Passed,
                    Some(at) if i == at => row.result = StepResult::Running,
                    _ => {}
                }
            }
        }
        let changed = before.as_ref().is_none_or(|b| {
            b.stage != seen.stage
                || b.production != seen.production
                || b.test != seen.test
                || b.paused != seen.paused
                || b.status != seen.status
        });
        if changed {
            let event = Event::EcsStage {
                service: self.r.release.service,
                status: &seen.status,
                stage: &seen.stage,
                production: seen.production,
                test: seen.test,
                paused: !seen.paused.is_empty(),
            };
            progress.emit(event, table).await;
        }
    }

    /// The gates, where judging makes sense now: at a pause of ours, and while green takes
    /// production traffic.
    async fn judge_now(&mut self, seen: &Seen, table: &mut [StepRecord], progress: &mut impl Progress, gha: &Gha) {
        let plan = self.r.plan;
        if !plan.judged() {
            return;
        }
        let pause = seen.paused.iter().find(|(id, _)| !self.answered.contains(id)).map(|(id, _)| id.clone());
        if pause.is_none() && (seen.production <= 0.0 || Instant::now() < self.next_check) {
            return;
        }
        let row = table.iter().position(|row| row.result == StepResult::Running);
        let label = match (&pause, row) {
            (Some(_), _) if seen.production <= 0.0 => format!("pause at {}", seen.stage),
            (Some(_), Some(i)) => format!("pause after shift {}/{}", i + 1, table.len()),
            (None, Some(i)) => format!("shift {}/{}", i + 1, table.len()),
            _ => seen.stage.to_lowercase(),
        };
        let (mut results, elapsed, bake) = self.check(seen, pause.is_some()).await;
        progress.emit(Event::GatesChecked { label: &label, results: &results, elapsed }, table).await;
        let judgement = self.judge.judge(&mut results, elapsed, bake);
        if let Some(i) = row {
            table[i].gates = results;
            if let Some((at, ..)) = self.shifted {
                table[i].took = Some(at.elapsed());
            }
        }
        match judgement {
            Judgement::Failed(why) => {
                if let Some(i) = row {
                    table[i].result = StepResult::Failed;
                }
                self.roll_back(why, pause, table, progress, gha).await;
            }
            Judgement::CheckAgainAfter(wait) => self.next_check = Instant::now() + wait,
            Judgement::Passed { unjudged } => {
                for gate in unjudged {
                    let what = format!(
                        "{label}: {}; ECS goes on without its verdict (set min-requests to roll back instead, or give the step more traffic or a longer bake)",
                        gate.describe("could not judge")
                    );
                    progress.emit(Event::NoEvidence { what: &what }, table).await;
                }
                self.next_check = Instant::now() + plan.check_interval;
                if let Some(hook) = pause {
                    self.answer(&hook, &seen.stage, table, progress).await;
                }
            }
        }
    }

    /// Checks the gates: at a pause before any production traffic (the test shift) the probe,
    /// alarms and green's health; otherwise every gate over the window since the last shift.
    /// Returns the results, the time since the window began and how long the window bakes.
    async fn check(&self, seen: &Seen, paused: bool) -> (Vec<GateResult>, Duration, Duration) {
        let plan = self.r.plan;
        let mut gates = plan.gates.clone();
        if seen.production <= 0.0 {
            // Green has no production traffic yet: no rate or latency to compare.
            gates.max_error_rate = None;
            gates.max_latency = None;
        }
        let ctx = GateContext {
            aws: self.r.aws,
            gates: &gates,
            canary_target_group: &plan.green,
            stable_target_group: &plan.blue,
            http: &self.http,
        };
        let (at, since) = self.shifted.map(|(at, since, _)| (at, since)).unwrap_or((Instant::now(), SystemTime::now()));
        let window = Window { since, first_shift: self.started };
        let tasks = seen.green_requested.max(1);
        let results = gates::check(&ctx, tasks, &[], window).await;
        // At a pause, ECS already baked the shift: the window is judged now. Between pauses (and in
        // the bake, where ECS allows none) the row's own bake is.
        let bake = match paused {
            true => Duration::ZERO,
            false => plan
                .steps
                .iter()
                .find(|s| f64::from(s.weight) + 0.5 >= seen.production)
                .map(|s| s.bake)
                .unwrap_or_default(),
        };
        (results, at.elapsed(), bake)
    }

    async fn answer(&mut self, hook: &str, stage: &str, table: &[StepRecord], progress: &mut impl Progress) {
        let (ecs, arn) = (&self.r.aws.ecs, self.arn.clone());
        match retry::for_up_to(retry::MUST_SUCCEED_FOR, async || deployments::answer(ecs, &arn, hook, true).await).await
        {
            Ok(()) => {
                self.answered.push(hook.to_string());
                progress.emit(Event::PauseAnswered { stage, proceed: true, why: "gates pass" }, table).await;
            }
            // Unanswered, the pause times out into ECS's rollback: never a release nobody judged.
            Err(e) => {
                let why = format!("{e:#}");
                progress.emit(Event::PauseAnswered { stage, proceed: false, why: &why }, table).await;
            }
        }
    }

    /// The traffic call of an abort: ROLLBACK at the pause, or a stop with rollback. ECS puts
    /// production and test traffic back on blue first, then removes green.
    async fn roll_back(
        &mut self,
        why: String,
        pause: Option<String>,
        table: &[StepRecord],
        progress: &mut impl Progress,
        gha: &Gha,
    ) {
        let (ecs, arn) = (&self.r.aws.ecs, self.arn.clone());
        let budget = if self.r.release.cancel.by_signal() { retry::WITHIN_A_SIGNAL } else { retry::MUST_SUCCEED_FOR };
        let called = retry::for_up_to(budget, async || match &pause {
            Some(hook) => deployments::answer(ecs, &arn, hook, false).await,
            None => deployments::roll_back(ecs, &arn).await,
        })
        .await;
        if let Some(hook) = pause {
            self.answered.push(hook);
        }
        let back = called.is_ok();
        self.r.run.aborted(self.r.release.service, &why, back, gha);
        progress.emit(Event::Aborting { traffic_back: back, reason: &why }, table).await;
        if let Err(e) = called {
            gha.warning(&format!(
                "ECS could not be asked to roll back {}: {e:#}. Roll it back yourself: aws ecs stop-service-deployment \
                 --service-deployment-arn {} --stop-type ROLLBACK",
                self.r.release.service, self.arn
            ));
        }
        self.ours = Some(why);
    }

    /// A signal or another service's failure: roll back; after a signal, do not wait for ECS.
    async fn stop(&mut self, table: &[StepRecord], progress: &mut impl Progress, gha: &Gha) -> Option<End> {
        let by_signal = self.r.release.cancel.by_signal();
        if by_signal {
            progress.emit(Event::Cancelled, table).await;
        }
        let why = match self.r.release.cancel.sibling_failed() {
            Some(reason) if !by_signal => reason,
            _ => CANCELLED_REASON.to_string(),
        };
        let pause = self.last.as_ref().and_then(|s| s.paused.first()).map(|(id, _)| id.clone());
        self.roll_back(why.clone(), pause, table, progress, gha).await;
        by_signal.then(|| {
            gha.info(&format!(
                "cancelled: not waiting for ECS to finish rolling back {} (it does on its own)",
                self.r.release.service
            ));
            End::Done(Outcome::RolledBack { reason: why, at: None })
        })
    }

    /// How the service deployment ended, as the run's outcome.
    async fn ended(&mut self, seen: &Seen, table: &mut [StepRecord], progress: &mut impl Progress) -> Outcome {
        let service = self.r.release.service;
        match seen.status.as_str() {
            "SUCCESSFUL" => {
                for row in table.iter_mut().filter(|r| r.result != StepResult::Failed) {
                    row.result = StepResult::Passed;
                }
                progress.emit(Event::RolloutCompleted { service, revision: self.r.release.revision }, table).await;
                Outcome::Succeeded
            }
            status if deployments::rolled_back(status) => {
                let reason = match &self.ours {
                    Some(ours) => ours.clone(),
                    None => {
                        let said =
                            seen.rollback_reason.clone().or_else(|| seen.status_reason.clone()).unwrap_or_default();
                        let alarms = match seen.triggered_alarms.as_slice() {
                            [] => String::new(),
                            names => format!(" (alarm {} in ALARM)", names.join(", ")),
                        };
                        let reason = format!("ECS rolled back {}: {}{alarms}", self.r.plan.strategy, said);
                        let event = Event::RollingBack {
                            service,
                            reason: &reason,
                            revision: self.r.release.previous,
                            by_ecs: true,
                        };
                        progress.emit(event, table).await;
                        reason
                    }
                };
                self.r.run.traffic_is_back();
                Outcome::RolledBack {
                    reason,
                    at: table.iter().position(|r| r.result == StepResult::Failed).map(|i| i + 1),
                }
            }
            status => Outcome::Failed {
                reason: format!(
                    "ECS's {} ended {status}: {}",
                    self.r.plan.strategy,
                    seen.status_reason.as_deref().unwrap_or("no reason given")
                ),
            },
        }
    }
}
