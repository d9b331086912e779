//! How a native deployment ends: the action's rollback (traffic first, ECS's own calls), a stop on a
//! signal or another service's failure, and the end ECS reports read as the run's outcome.

use super::End;
use crate::ecs::deployments::{self, Seen};
use crate::gha::Gha;
use crate::outcome::Outcome;
use crate::progress::{Event, Progress};
use crate::records::{StepRecord, StepResult};
use crate::retry;
use crate::signals::CANCELLED_REASON;

impl super::watch::Watch<'_, '_> {
    /// The traffic call of an abort: ROLLBACK at the pause, or a stop with rollback. ECS puts
    /// production and test traffic back on blue first, then removes green.
    pub(super) async fn roll_back(
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
    pub(super) async fn stop(&mut self, table: &[StepRecord], progress: &mut impl Progress, gha: &Gha) -> Option<End> {
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
    pub(super) async fn ended(
        &mut self,
        seen: &Seen,
        table: &mut [StepRecord],
        progress: &mut impl Progress,
    ) -> Outcome {
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
