//! The gates at ECS's own strategy: at the action's pauses (answered CONTINUE once they pass) and
//! while green takes production traffic, over the window since the last shift against blue's.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::canary::controller::Judgement;
use crate::canary::gates::{self, GateContext, Window};
use crate::ecs::deployments::{self, Seen};
use crate::gha::Gha;
use crate::outcome::PausedAt;
use crate::progress::{Event, Progress};
use crate::records::{GateResult, StepRecord, StepResult};
use crate::retry;
use aws_sdk_ecs::primitives::{DateTime, DateTimeFormat};

impl super::watch::Watch<'_, '_> {
    /// The gates, where judging makes sense now: at a pause of ours, and while green takes
    /// production traffic.
    pub(super) async fn judge_now(
        &mut self,
        seen: &Seen,
        table: &mut [StepRecord],
        progress: &mut impl Progress,
        gha: &Gha,
    ) {
        let plan = self.r.plan;
        let pause = seen.paused.iter().find(|(id, _)| !self.answered.contains(id)).map(|(id, _)| id.clone());
        if !plan.judged() {
            // An approval without gates: its pause stops the run, any other of ours goes on.
            if let Some(hook) = pause {
                self.pass_pause(&hook, seen, table, progress, gha, "no gates configured").await;
            }
            return;
        }
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
        let (mut results, elapsed) = self.check(seen).await;
        // At a pause, ECS already baked the shift: the window is judged now. Between pauses (and in
        // the bake, where ECS allows none) the shift's own row's bake is.
        let bake = match (&pause, row) {
            (None, Some(i)) => table[i].bake,
            _ => Duration::ZERO,
        };
        progress.emit(Event::GatesChecked { label: &label, results: &results, elapsed, bake }, table).await;
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
                    self.pass_pause(&hook, seen, table, progress, gha, "gates pass").await;
                }
            }
        }
    }

    /// Checks the gates: at a pause before any production traffic (the test shift) the probe,
    /// alarms and green's health; otherwise every gate over the window since the last shift.
    /// Returns the results and the time since the window began.
    pub(super) async fn check(&self, seen: &Seen) -> (Vec<GateResult>, Duration) {
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
        (results, at.elapsed())
    }

    /// A pause whose gates passed: the one people approve ends the run (paused), any other is
    /// answered CONTINUE.
    async fn pass_pause(
        &mut self,
        hook: &str,
        seen: &Seen,
        table: &[StepRecord],
        progress: &mut impl Progress,
        gha: &Gha,
        why: &str,
    ) {
        if self.r.plan.approval_due(seen.production) {
            gha.info(&format!("{}: {why}; waiting for approval at {}", seen.stage, self.r.release.service));
            let expires = seen.paused.iter().find(|(id, _)| id == hook).and_then(|(_, at)| *at);
            self.waiting = Some(PausedAt {
                service: self.r.release.service.to_string(),
                service_deployment_arn: self.arn.clone(),
                hook_id: hook.to_string(),
                stage: seen.stage.clone(),
                production: seen.production,
                expires: expires.map(|at| DateTime::from(at).fmt(DateTimeFormat::DateTime).unwrap_or_default()),
            });
            return;
        }
        let approved = self.r.plan.resume.as_ref().is_some_and(|p| p.hook == hook);
        let why =
            if approved { format!("approved (resume: continue), {why} over the paused window") } else { why.into() };
        self.answer(hook, &seen.stage, &why, table, progress).await;
    }

    pub(super) async fn answer(
        &mut self,
        hook: &str,
        stage: &str,
        why: &str,
        table: &[StepRecord],
        progress: &mut impl Progress,
    ) {
        let (ecs, arn) = (&self.r.aws.ecs, self.arn.clone());
        match retry::for_up_to(retry::MUST_SUCCEED_FOR, async || deployments::answer(ecs, &arn, hook, true).await).await
        {
            Ok(()) => {
                self.answered.push(hook.to_string());
                progress.emit(Event::PauseAnswered { stage, proceed: true, why }, table).await;
            }
            // Unanswered, the pause times out into ECS's rollback: never a release nobody judged.
            Err(e) => {
                let why = format!("{e:#}");
                progress.emit(Event::PauseAnswered { stage, proceed: false, why: &why }, table).await;
            }
        }
    }
}
