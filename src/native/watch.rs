//! Following one service deployment of ECS's own strategy to its end: each look read, what changed
//! said, the gates asked where they judge, and the run stopped (a signal, another service's failure,
//! the deadline) with a rollback.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{End, NativeRun};
use crate::canary::controller::{Judge, Judging};
use crate::config::duration;
use crate::ecs::deployments::{self, Seen};
use crate::ecs::poll::Poll;
use crate::gha::Gha;
use crate::outcome::{Outcome, PausedAt};
use crate::plan::ResumePoint;
use crate::progress::{Event, Progress};
use crate::records::{StepRecord, StepResult};
use crate::retry;

/// What the watch remembers between looks.
pub(super) struct Watch<'r, 'a> {
    pub(super) r: &'r mut NativeRun<'a>,
    pub(super) arn: String,
    /// When blue last had all production traffic for sure (the relative gates' baseline before a shift).
    pub(super) started: SystemTime,
    pub(super) last: Option<Seen>,
    /// The last production shift: when, and green's share then.
    pub(super) shifted: Option<(Instant, SystemTime, f64)>,
    pub(super) judge: Judge,
    /// Pauses already answered (ECS may still list one for a moment).
    pub(super) answered: Vec<String>,
    /// Why the action rolled back, when it did.
    pub(super) ours: Option<String>,
    pub(super) next_check: Instant,
    pub(super) http: reqwest::Client,
    /// Set at the approval pause: the run ends there, paused.
    pub(super) waiting: Option<PausedAt>,
}

impl<'r, 'a> Watch<'r, 'a> {
    pub(super) fn new(r: &'r mut NativeRun<'a>, arn: String, started: SystemTime) -> Self {
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
            waiting: None,
        }
    }

    /// A watch that starts at the pause people answered (`resume`): the paused window is the gates'
    /// window, and the shifts before it passed.
    pub(super) fn resumed(r: &'r mut NativeRun<'a>, point: &ResumePoint, table: &mut [StepRecord]) -> Self {
        let mut watch = Watch::new(r, point.arn.clone(), point.started);
        if point.seen.production > 0.0 {
            let paused_for = SystemTime::now().duration_since(point.paused_since).unwrap_or_default();
            let at = Instant::now().checked_sub(paused_for).unwrap_or_else(Instant::now);
            watch.shifted = Some((at, point.paused_since, point.seen.production));
            mark_shift(table, point.seen.production);
        }
        watch.last = Some(point.seen.clone());
        watch
    }

    pub(super) async fn follow(mut self, table: &mut [StepRecord], progress: &mut impl Progress, gha: &Gha) -> End {
        if let Some(point) = self.r.plan.resume.as_ref().filter(|p| !p.proceed) {
            let why = format!("rolled back at the approval pause at {} (resume: rollback)", point.seen.stage);
            let hook = Some(point.hook.clone());
            self.roll_back(why, hook, table, progress, gha).await;
        }
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
                    // Blind for as long again after asking ECS to roll back: say where to look, and end.
                    if failed_looks >= 2 * retry::CONSECUTIVE_FAILURES {
                        let reason = format!(
                            "{}; ECS was asked to roll back and could not be watched since: check it with aws ecs \
                             describe-service-deployments --service-deployment-arns {}",
                            self.ours.clone().unwrap_or_default(),
                            self.arn
                        );
                        return End::Done(Outcome::Failed { reason });
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
                if let Some(at) = self.waiting.take() {
                    return End::Paused(Box::new(at));
                }
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
            mark_shift(table, seen.production);
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
}

/// The shift that reached `production`% starts its row; the rows before it passed.
fn mark_shift(table: &mut [StepRecord], production: f64) {
    let at = table.iter().position(|row| f64::from(row.weight) + 0.5 >= production);
    for (i, row) in table.iter_mut().enumerate() {
        match at {
            Some(at) if i < at && row.result != StepResult::Failed => row.result = StepResult::Passed,
            Some(at) if i == at => row.result = StepResult::Running,
            _ => {}
        }
    }
}
