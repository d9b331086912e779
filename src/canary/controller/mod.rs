//! The canary as a pure state machine: observations in (the canary is ready, gates were checked, time
//! passed, a wait timed out, the run was cancelled, a call failed), the next action out. No I/O
//! here, so every transition, and the abort from every state, is a table test.
//!
//! Abort order is the safety contract: traffic first (weights 100/0 in one call), then the canary
//! service to zero, then, only if promotion had started, the stable service back to its previous
//! revision.

use std::time::Duration;

use crate::outcome::Outcome;
use crate::plan::PlannedStep;
use crate::records::{GateResult, StepRecord, StepResult};

mod judging;

pub(crate) use judging::{Judge, Judgement, Judging};

/// Checks in a row with an unreadable gate before the step fails: one throttled call is no
/// verdict, four in a row leave the canary unwatched for too long.
pub(crate) const MAX_UNREADABLE: u32 = crate::retry::CONSECUTIVE_FAILURES;

/// After the bake, how soon an unreadable gate is asked again (at most the check interval).
const RECHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Observation {
    Start,
    /// The last action was carried out.
    Done,
    /// The canary service runs its tasks for the step and its target group reports them healthy.
    CanaryReady,
    /// Gates checked `elapsed` after the step's traffic shift.
    Checked {
        results: Vec<GateResult>,
        elapsed: Duration,
    },
    /// The stable service runs the new revision, stable.
    Promoted,
    /// A wait outlived wait-timeout, or a call failed.
    Failed(String),
    Cancelled,
}

impl Observation {
    /// Its name, for the one message that shows an observation (an unexpected one).
    fn name(&self) -> &'static str {
        match self {
            Observation::Start => "start",
            Observation::Done => "done",
            Observation::CanaryReady => "canary ready",
            Observation::Checked { .. } => "gates checked",
            Observation::Promoted => "promoted",
            Observation::Failed(_) => "failed",
            Observation::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Run the new revision on the canary service with this many tasks.
    ScaleCanary {
        /// The step (0-based) the tasks are for: actions carry it, nothing re-derives it.
        step: usize,
        tasks: i32,
    },
    WaitCanaryReady {
        tasks: i32,
    },
    /// While `step - 1` bakes: give the canary service `step`'s tasks already, so that step does not
    /// wait for their start. They join the canary target group, whose weight stays until the bake
    /// passed; the gates watch only the targets that were healthy at the shift.
    PrestartCanary {
        step: usize,
        tasks: i32,
    },
    SetWeights {
        stable: i32,
        canary: i32,
    },
    /// Wait this long (interruptible), then check every gate.
    CheckGatesAfter {
        step: usize,
        wait: Duration,
    },
    /// Give the stable service the new revision and wait until it is stable.
    Promote,
    /// Abort and end of a run: canary service to zero tasks.
    ScaleCanaryToZero,
    /// Abort after promotion started: the stable service back to the previous revision.
    RestoreStable,
    Finish(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Scaling(usize),
    WaitingReady(usize),
    Shifting(usize),
    /// The step's traffic is shifted; the next step's extra tasks are being started.
    Prestarting(usize),
    Baking(usize),
    Promoting,
    ResettingTraffic,
    ScalingDown,
    Finished,
    /// Abort sequence: which undo comes next.
    AbortTraffic,
    AbortScaleDown,
    AbortRestore,
}

impl Phase {
    /// Where the controller is, in words.
    fn name(&self) -> String {
        match self {
            Phase::Idle => "idle".into(),
            Phase::Scaling(i) => format!("scaling the canary for step {}", i + 1),
            Phase::WaitingReady(i) => format!("waiting for step {}'s tasks", i + 1),
            Phase::Shifting(i) => format!("shifting step {}'s traffic", i + 1),
            Phase::Prestarting(i) => format!("starting the tasks after step {}", i + 1),
            Phase::Baking(i) => format!("baking step {}", i + 1),
            Phase::Promoting => "promoting".into(),
            Phase::ResettingTraffic => "putting traffic back after the promotion".into(),
            Phase::ScalingDown => "scaling the canary down".into(),
            Phase::Finished => "finished".into(),
            Phase::AbortTraffic | Phase::AbortScaleDown | Phase::AbortRestore => "aborting".into(),
        }
    }
}

pub(crate) struct Controller {
    steps: Vec<PlannedStep>,
    check_interval: Duration,
    phase: Phase,
    promotion_started: bool,
    abort: Option<(String, Option<usize>)>,
    /// Failures while undoing, reported with the abort reason.
    undo_errors: Vec<String>,
    /// How checks become the current step's verdict.
    judge: Judge,
    /// Gates of a step that passed without their verdict (too little evidence), for a warning.
    unjudged: Vec<(usize, GateResult)>,
    pub(crate) table: Vec<StepRecord>,
    left_behind: Vec<String>,
}

impl Controller {
    pub(crate) fn new(steps: Vec<PlannedStep>, check_interval: Duration) -> Self {
        let table = steps.iter().map(|s| StepRecord::pending(s.weight, s.bake, s.canary_tasks)).collect();
        Controller {
            steps,
            check_interval,
            phase: Phase::Idle,
            promotion_started: false,
            abort: None,
            undo_errors: Vec::new(),
            judge: Judge::new(Judging { failure_limit: 1, inconclusive_fails: true }, check_interval),
            unjudged: Vec::new(),
            left_behind: Vec::new(),
            table,
        }
    }

    /// How checks become a step's verdict (by default: the first failing check fails the step, and
    /// a gate still inconclusive at the end of the bake fails it too).
    pub(crate) fn judging(mut self, judging: Judging) -> Self {
        self.judge = Judge::new(judging, self.check_interval);
        self
    }

    /// The gates of a step that passed without their verdict since the last call, with the step.
    pub(crate) fn take_unjudged(&mut self) -> Vec<(usize, GateResult)> {
        std::mem::take(&mut self.unjudged)
    }

    /// The step the canary is at (0-based), if any.
    pub(crate) fn current_step(&self) -> Option<usize> {
        match self.phase {
            Phase::Scaling(i)
            | Phase::WaitingReady(i)
            | Phase::Shifting(i)
            | Phase::Prestarting(i)
            | Phase::Baking(i) => Some(i),
            _ => None,
        }
    }

    pub(crate) fn is_aborting(&self) -> bool {
        self.abort.is_some()
    }

    /// Why the canary is being aborted, once it is.
    pub(crate) fn abort_reason(&self) -> Option<&str> {
        self.abort.as_ref().map(|(reason, _)| reason.as_str())
    }

    /// After a completed promotion: the stable service runs the new revision, and what remains is
    /// clean-up that must never turn into a rollback.
    pub(crate) fn is_cleaning_up(&self) -> bool {
        matches!(self.phase, Phase::ResettingTraffic | Phase::ScalingDown)
    }

    /// What a successful run could not clean up, for a person to finish (weights, canary tasks).
    pub(crate) fn left_behind(&self) -> &[String] {
        &self.left_behind
    }

    /// Records how long the current step has taken (the executor knows the clock).
    pub(crate) fn note_elapsed(&mut self, step: usize, took: Duration) {
        if let Some(row) = self.table.get_mut(step) {
            row.took = Some(took);
        }
    }

    pub(crate) fn next(&mut self, observation: Observation) -> Action {
        if self.abort.is_some() {
            return self.undo(observation);
        }
        if self.is_cleaning_up() {
            return self.clean_up(observation);
        }
        match observation {
            Observation::Cancelled => return self.begin_abort(crate::signals::CANCELLED_REASON.into()),
            Observation::Failed(reason) => return self.begin_abort(reason),
            _ => {}
        }
        match (self.phase, observation) {
            (Phase::Idle, Observation::Start) => self.scale(0),
            (Phase::Scaling(i), Observation::Done) => {
                self.phase = Phase::WaitingReady(i);
                Action::WaitCanaryReady { tasks: self.steps[i].canary_tasks }
            }
            (Phase::WaitingReady(i), Observation::CanaryReady) => {
                self.phase = Phase::Shifting(i);
                let w = i32::from(self.steps[i].weight);
                Action::SetWeights { stable: 100 - w, canary: w }
            }
            (Phase::Shifting(i), Observation::Done) => match self.steps.get(i + 1) {
                Some(next) if next.canary_tasks > self.steps[i].canary_tasks => {
                    self.phase = Phase::Prestarting(i);
                    Action::PrestartCanary { step: i + 1, tasks: next.canary_tasks }
                }
                _ => {
                    self.phase = Phase::Baking(i);
                    Action::CheckGatesAfter { step: i, wait: self.first_check(i) }
                }
            },
            (Phase::Prestarting(i), Observation::Done) => {
                self.phase = Phase::Baking(i);
                Action::CheckGatesAfter { step: i, wait: self.first_check(i) }
            }
            (Phase::Baking(i), Observation::Checked { results, elapsed }) => self.judge(i, results, elapsed),
            (Phase::Promoting, Observation::Promoted) => {
                self.phase = Phase::ResettingTraffic;
                Action::SetWeights { stable: 100, canary: 0 }
            }
            (phase, observation) => {
                // A state machine bug, said in words a user can report (the values are internal).
                let (seen, during) = (observation.name(), phase.name());
                self.begin_abort(format!(
                    "internal: the canary controller was told `{seen}` while {during}; please report this"
                ))
            }
        }
    }

    fn scale(&mut self, i: usize) -> Action {
        self.phase = Phase::Scaling(i);
        // A step's checks look at its own window: failures of the last one do not carry over.
        self.judge.new_window();
        self.table[i].result = StepResult::Running;
        Action::ScaleCanary { step: i, tasks: self.steps[i].canary_tasks }
    }

    /// The first check comes one interval after the shift (or at once for a step without bake).
    fn first_check(&self, i: usize) -> Duration {
        self.check_interval.min(self.steps[i].bake)
    }

    fn begin_abort(&mut self, reason: String) -> Action {
        let step = self.current_step();
        if let Some(i) = step
            && self.table[i].result == StepResult::Running
        {
            self.table[i].result = StepResult::Failed;
        }
        self.abort = Some((reason, step.map(|i| i + 1)));
        // Traffic first, whatever state we were in: the one call that protects users.
        self.phase = Phase::AbortTraffic;
        Action::SetWeights { stable: 100, canary: 0 }
    }

    /// After the promotion: weights back to 100/0, then the canary to zero. Nothing here is rolled
    /// back and a cancellation does not stop it (the new revision already serves everyone): a step
    /// that fails is left for a person, named, and the run still succeeds. The canary keeps its
    /// tasks when the weights could not be reset, since it still takes the traffic.
    fn clean_up(&mut self, observation: Observation) -> Action {
        match (self.phase, observation) {
            (Phase::ResettingTraffic, Observation::Failed(reason)) => {
                self.left_behind.push(format!(
                    "the weights could not be put back to 100/0, so the canary service keeps its tasks (it runs the new revision too): {reason}"
                ));
                self.phase = Phase::Finished;
                Action::Finish(Outcome::Succeeded)
            }
            (Phase::ResettingTraffic, Observation::Cancelled) => Action::SetWeights { stable: 100, canary: 0 },
            (Phase::ResettingTraffic, _) => {
                self.phase = Phase::ScalingDown;
                Action::ScaleCanaryToZero
            }
            (Phase::ScalingDown, Observation::Failed(reason)) => {
                self.left_behind.push(format!("the canary service was not scaled to zero: {reason}"));
                self.phase = Phase::Finished;
                Action::Finish(Outcome::Succeeded)
            }
            (Phase::ScalingDown, Observation::Cancelled) => Action::ScaleCanaryToZero,
            _ => {
                self.phase = Phase::Finished;
                Action::Finish(Outcome::Succeeded)
            }
        }
    }

    /// The abort sequence: traffic first. If traffic cannot be put back, nothing else is touched:
    /// scaling the canary down then would send live traffic to an empty target group. After that,
    /// the undo goes on whatever happens; its failures are collected, never skipped over.
    fn undo(&mut self, observation: Observation) -> Action {
        if let Observation::Failed(reason) = observation {
            if self.phase == Phase::AbortTraffic {
                self.phase = Phase::Finished;
                let (abort, _) = self.abort.clone().unwrap_or_default();
                return Action::Finish(Outcome::Failed {
                    reason: format!(
                        "{abort}; traffic could not be put back on the stable service, so nothing else was changed: {reason}"
                    ),
                });
            }
            self.undo_errors.push(reason);
        }
        match self.phase {
            Phase::AbortTraffic => {
                self.phase = Phase::AbortScaleDown;
                Action::ScaleCanaryToZero
            }
            Phase::AbortScaleDown if self.promotion_started => {
                self.phase = Phase::AbortRestore;
                Action::RestoreStable
            }
            _ => {
                self.phase = Phase::Finished;
                let (reason, step) = self.abort.clone().unwrap_or_default();
                if self.undo_errors.is_empty() {
                    Action::Finish(Outcome::RolledBack { reason, at: step })
                } else {
                    Action::Finish(Outcome::Failed {
                        reason: format!("{reason}; undoing it failed too: {}", self.undo_errors.join("; ")),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Verdict;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn steps() -> Vec<PlannedStep> {
        vec![
            PlannedStep { weight: 10, bake: secs(20), canary_tasks: 1 },
            PlannedStep { weight: 50, bake: secs(20), canary_tasks: 2 },
            PlannedStep { weight: 100, bake: Duration::ZERO, canary_tasks: 4 },
        ]
    }

    fn pass() -> Vec<GateResult> {
        vec![GateResult::pass("alarms", "OK")]
    }

    fn alarm() -> Vec<GateResult> {
        vec![GateResult::fail("alarms", "api-5xx in ALARM", "Threshold Crossed")]
    }

    fn checked(results: Vec<GateResult>, elapsed: u64) -> Observation {
        Observation::Checked { results, elapsed: secs(elapsed) }
    }

    /// Drives a controller through `observations`, returning every action.
    fn drive(c: &mut Controller, observations: Vec<Observation>) -> Vec<Action> {
        observations.into_iter().map(|o| c.next(o)).collect()
    }

    use Action::*;
    use Observation::*;

    #[test]
    fn happy_path_walks_every_step_then_promotes_and_cleans_up() {
        let mut c = Controller::new(steps(), secs(10));
        let actions = drive(
            &mut c,
            vec![
                Start,
                Done,
                CanaryReady,
                Done,
                Done,
                checked(pass(), 10),
                checked(pass(), 20),
                Done,
                CanaryReady,
                Done,
                Done,
                checked(pass(), 10),
                checked(pass(), 20),
                Done,
                CanaryReady,
                Done,
                checked(pass(), 0),
                Promoted,
                Done,
                Done,
            ],
        );
        assert_eq!(
            actions,
            vec![
                ScaleCanary { step: 0, tasks: 1 },
                WaitCanaryReady { tasks: 1 },
                SetWeights { stable: 90, canary: 10 },
                // While step 1 bakes, step 2's tasks start: its weight comes after the bake.
                PrestartCanary { step: 1, tasks: 2 },
                CheckGatesAfter { step: 0, wait: secs(10) },
                CheckGatesAfter { step: 0, wait: secs(10) },
                ScaleCanary { step: 1, tasks: 2 },
                WaitCanaryReady { tasks: 2 },
                SetWeights { stable: 50, canary: 50 },
                PrestartCanary { step: 2, tasks: 4 },
                CheckGatesAfter { step: 1, wait: secs(10) },
                CheckGatesAfter { step: 1, wait: secs(10) },
                ScaleCanary { step: 2, tasks: 4 },
                WaitCanaryReady { tasks: 4 },
                SetWeights { stable: 0, canary: 100 },
                CheckGatesAfter { step: 2, wait: Duration::ZERO },
                Promote,
                SetWeights { stable: 100, canary: 0 },
                ScaleCanaryToZero,
                Finish(Outcome::Succeeded),
            ]
        );
        assert!(c.table.iter().all(|r| r.result == StepResult::Passed));
    }

    #[test]
    fn only_a_next_step_with_more_tasks_is_started_during_the_bake() {
        let one_task = |weight| PlannedStep { weight, bake: secs(20), canary_tasks: 1 };
        let mut c = Controller::new(vec![one_task(10), one_task(50), one_task(100)], secs(10));
        let actions = drive(&mut c, vec![Start, Done, CanaryReady, Done]);
        assert_eq!(actions.last(), Some(&CheckGatesAfter { step: 0, wait: secs(10) }), "{actions:?}");
        let mut c = Controller::new(steps(), secs(10));
        let actions = drive(&mut c, vec![Start, Done, CanaryReady, Done]);
        assert_eq!(actions.last(), Some(&PrestartCanary { step: 1, tasks: 2 }));
        assert_eq!(
            c.next(Failed("UpdateService throttled".into())),
            SetWeights { stable: 100, canary: 0 },
            "a failed start aborts, traffic first"
        );
    }

    #[test]
    fn the_last_check_of_a_bake_is_at_its_end() {
        let mut c = Controller::new(vec![PlannedStep { weight: 100, bake: secs(25), canary_tasks: 1 }], secs(10));
        drive(&mut c, vec![Start, Done, CanaryReady]);
        assert_eq!(c.next(Done), CheckGatesAfter { step: 0, wait: secs(10) });
        assert_eq!(c.next(checked(pass(), 10)), CheckGatesAfter { step: 0, wait: secs(10) });
        assert_eq!(c.next(checked(pass(), 20)), CheckGatesAfter { step: 0, wait: secs(5) });
        assert_eq!(c.next(checked(pass(), 25)), Promote);
    }

    #[test]
    fn a_failed_gate_at_step_2_puts_traffic_back_first_then_scales_down() {
        let mut c = Controller::new(steps(), secs(10));
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done, checked(pass(), 20), Done, CanaryReady, Done, Done]);
        assert_eq!(c.next(checked(alarm(), 10)), SetWeights { stable: 100, canary: 0 });
        assert_eq!(c.next(Done), ScaleCanaryToZero);
        assert_eq!(
            c.next(Done),
            Finish(Outcome::RolledBack {
                reason: "alarms gate failed: api-5xx in ALARM (Threshold Crossed)".into(),
                at: Some(2)
            })
        );
        assert_eq!(c.table[0].result, StepResult::Passed);
        assert_eq!(c.table[1].result, StepResult::Failed);
        assert_eq!(c.table[1].gates, alarm());
        assert_eq!(c.table[2].result, StepResult::Pending);
    }

    /// Every phase before promotion, aborted by cancellation and by a failure: the first undo is
    /// always the traffic, then the canary to zero, and the stable service is never touched.
    #[test]
    fn abort_from_every_phase_before_promotion() {
        let prefixes: Vec<Vec<Observation>> = vec![
            vec![Start],
            vec![Start, Done],
            vec![Start, Done, CanaryReady],
            vec![Start, Done, CanaryReady, Done],
            vec![Start, Done, CanaryReady, Done, Done],
            vec![Start, Done, CanaryReady, Done, Done, checked(pass(), 10)],
            vec![Start, Done, CanaryReady, Done, Done, checked(pass(), 20), Done],
        ];
        for prefix in prefixes {
            for trigger in [Cancelled, Failed("wait-timeout 15m passed".into())] {
                let mut c = Controller::new(steps(), secs(10));
                drive(&mut c, prefix.clone());
                let undo = drive(&mut c, vec![trigger.clone(), Done, Done]);
                assert_eq!(undo[0], SetWeights { stable: 100, canary: 0 }, "after {prefix:?} + {trigger:?}");
                assert_eq!(undo[1], ScaleCanaryToZero);
                assert!(matches!(&undo[2], Finish(Outcome::RolledBack { .. })), "{undo:?}");
            }
        }
    }

    #[test]
    fn abort_during_promotion_restores_the_stable_service_too() {
        let mut c = Controller::new(vec![PlannedStep { weight: 100, bake: Duration::ZERO, canary_tasks: 2 }], secs(10));
        assert_eq!(
            drive(&mut c, vec![Start, Done, CanaryReady, Done]).last(),
            Some(&CheckGatesAfter { step: 0, wait: Duration::ZERO })
        );
        assert_eq!(c.next(checked(pass(), 0)), Promote);
        let undo = drive(&mut c, vec![Failed("promotion timed out".into()), Done, Done, Done]);
        assert_eq!(
            undo,
            vec![
                SetWeights { stable: 100, canary: 0 },
                ScaleCanaryToZero,
                RestoreStable,
                Finish(Outcome::RolledBack { reason: "promotion timed out".into(), at: None }),
            ]
        );
    }

    /// From every phase: when the abort's traffic call fails for good, the canary keeps running (it
    /// still takes traffic) and the stable service is not touched.
    #[test]
    fn traffic_that_cannot_be_put_back_stops_the_undo() {
        let prefixes: Vec<Vec<Observation>> = vec![
            vec![Start, Done, CanaryReady, Done, Done],
            vec![Start, Done, CanaryReady, Done, Done, checked(pass(), 20), Done, CanaryReady, Done, Done],
            vec![
                Start,
                Done,
                CanaryReady,
                Done,
                Done,
                checked(pass(), 20),
                Done,
                CanaryReady,
                Done,
                Done,
                checked(pass(), 20),
            ],
        ];
        for prefix in prefixes {
            let mut c = Controller::new(steps(), secs(10));
            drive(&mut c, prefix.clone());
            assert_eq!(c.next(Cancelled), SetWeights { stable: 100, canary: 0 }, "after {prefix:?}");
            let end = c.next(Failed("ModifyListener: Throttling: Rate exceeded".into()));
            assert_eq!(
                end,
                Finish(Outcome::Failed {
                    reason: "cancelled (SIGINT/SIGTERM); traffic could not be put back on the stable service, so \
                             nothing else was changed: ModifyListener: Throttling: Rate exceeded"
                        .into()
                }),
                "after {prefix:?}"
            );
        }
    }

    /// After a completed promotion nothing is rolled back: a clean-up step that fails is left for a
    /// person and named, the run succeeds, and a cancellation does not stop the clean-up.
    #[test]
    fn after_the_promotion_a_failed_clean_up_is_left_behind_and_the_run_succeeds() {
        let promoted = vec![Start, Done, CanaryReady, Done, checked(pass(), 0), Promoted];
        let one_step = || vec![PlannedStep { weight: 100, bake: Duration::ZERO, canary_tasks: 2 }];

        let mut c = Controller::new(one_step(), secs(10));
        assert_eq!(drive(&mut c, promoted.clone()).last(), Some(&SetWeights { stable: 100, canary: 0 }));
        assert_eq!(c.next(Failed("ModifyListener throttled".into())), Finish(Outcome::Succeeded));
        assert!(c.left_behind()[0].contains("the canary service keeps its tasks"), "{:?}", c.left_behind());

        let mut c = Controller::new(one_step(), secs(10));
        drive(&mut c, promoted.clone());
        assert_eq!(c.next(Done), ScaleCanaryToZero);
        assert_eq!(
            c.next(Failed("web-canary still runs 2 task(s) after wait-timeout".into())),
            Finish(Outcome::Succeeded)
        );
        assert!(c.left_behind()[0].contains("not scaled to zero"), "{:?}", c.left_behind());

        let mut c = Controller::new(one_step(), secs(10));
        drive(&mut c, promoted);
        assert_eq!(c.next(Cancelled), SetWeights { stable: 100, canary: 0 }, "a cancel does not stop the clean-up");
        assert_eq!(c.next(Done), ScaleCanaryToZero);
        assert_eq!(c.next(Done), Finish(Outcome::Succeeded));
        assert!(c.left_behind().is_empty());
    }

    #[test]
    fn once_traffic_is_back_the_undo_goes_on_when_a_later_step_fails_and_says_so() {
        let mut c = Controller::new(vec![PlannedStep { weight: 100, bake: Duration::ZERO, canary_tasks: 2 }], secs(10));
        drive(&mut c, vec![Start, Done, CanaryReady, Done]);
        assert_eq!(c.next(checked(pass(), 0)), Promote);
        assert_eq!(c.next(Failed("promotion timed out".into())), SetWeights { stable: 100, canary: 0 });
        assert_eq!(c.next(Done), ScaleCanaryToZero);
        assert_eq!(c.next(Failed("UpdateService throttled".into())), RestoreStable);
        assert_eq!(
            c.next(Done),
            Finish(Outcome::Failed {
                reason: "promotion timed out; undoing it failed too: UpdateService throttled".into()
            })
        );
    }

    #[test]
    fn a_second_cancel_during_the_abort_does_not_restart_it() {
        let mut c = Controller::new(steps(), secs(10));
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done]);
        assert_eq!(c.next(Cancelled), SetWeights { stable: 100, canary: 0 });
        assert_eq!(c.next(Cancelled), ScaleCanaryToZero);
        assert!(matches!(c.next(Done), Finish(Outcome::RolledBack { .. })));
    }

    fn unreadable() -> Vec<GateResult> {
        vec![GateResult {
            gate: "error-rate",
            verdict: Verdict::Unreadable,
            value: "could not read".into(),
            detail: Some("CloudWatch GetMetricStatistics: Throttling: Rate exceeded".into()),
            samples: None,
        }]
    }

    fn waiting() -> Vec<GateResult> {
        vec![GateResult {
            gate: "error-rate",
            verdict: Verdict::Waiting,
            value: "12 of min-requests 50".into(),
            detail: None,
            samples: None,
        }]
    }

    #[test]
    fn an_unreadable_gate_is_no_verdict_and_the_bake_goes_on() {
        let mut c = Controller::new(steps(), secs(5));
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done]);
        assert_eq!(c.next(checked(unreadable(), 5)), CheckGatesAfter { step: 0, wait: secs(5) });
        assert_eq!(c.next(checked(unreadable(), 10)), CheckGatesAfter { step: 0, wait: secs(5) });
        assert_eq!(c.next(checked(pass(), 15)), CheckGatesAfter { step: 0, wait: secs(5) });
        // The count is of checks in a row: a readable check starts it again.
        assert_eq!(c.next(checked(unreadable(), 18)), CheckGatesAfter { step: 0, wait: secs(2) });
        assert_eq!(c.next(checked(pass(), 20)), ScaleCanary { step: 1, tasks: 2 });
        assert_eq!(c.table[0].result, StepResult::Passed);
    }

    #[test]
    fn four_unreadable_checks_in_a_row_fail_the_step_naming_what_aws_said() {
        let mut c = Controller::new(steps(), secs(1));
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done]);
        for elapsed in 1..MAX_UNREADABLE {
            assert_eq!(c.next(checked(unreadable(), elapsed.into())), CheckGatesAfter { step: 0, wait: secs(1) });
        }
        assert_eq!(c.next(checked(unreadable(), 4)), SetWeights { stable: 100, canary: 0 });
        assert_eq!(c.next(Done), ScaleCanaryToZero);
        let Finish(Outcome::RolledBack { reason, at: Some(1) }) = c.next(Done) else { panic!("not rolled back") };
        assert!(reason.starts_with("4 checks in a row could not read every gate"), "{reason}");
        assert!(reason.contains("CloudWatch GetMetricStatistics: Throttling: Rate exceeded"), "{reason}");
        assert_eq!(c.table[0].result, StepResult::Failed);
    }

    #[test]
    fn at_the_end_of_the_bake_an_unreadable_gate_is_asked_again_before_the_step_passes() {
        let mut c = Controller::new(steps(), secs(10));
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done, checked(pass(), 10)]);
        assert_eq!(c.next(checked(unreadable(), 20)), CheckGatesAfter { step: 0, wait: secs(2) });
        assert_eq!(c.table[0].result, StepResult::Running, "no pass without a reading");
        assert_eq!(c.next(checked(pass(), 22)), ScaleCanary { step: 1, tasks: 2 });
    }

    #[test]
    fn too_little_evidence_waits_through_the_bake_and_then_fails_never_passes() {
        let mut c = Controller::new(steps(), secs(10));
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done]);
        assert_eq!(c.next(checked(waiting(), 10)), CheckGatesAfter { step: 0, wait: secs(10) });
        assert_eq!(c.next(checked(waiting(), 20)), SetWeights { stable: 100, canary: 0 });
        assert_eq!(c.next(Done), ScaleCanaryToZero);
        assert_eq!(
            c.next(Done),
            Finish(Outcome::RolledBack {
                reason: "inconclusive at the end of the bake: error-rate gate had too little evidence: 12 of \
                         min-requests 50"
                    .into(),
                at: Some(1)
            })
        );

        let mut c = Controller::new(steps(), secs(10));
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done]);
        c.next(checked(waiting(), 10));
        assert_eq!(c.next(checked(pass(), 20)), ScaleCanary { step: 1, tasks: 2 }, "evidence in time passes");
    }

    /// An error-rate result on the requests its value names (`3% of 1000`).
    fn rate(verdict: Verdict, value: &str) -> Vec<GateResult> {
        let detail = Some(format!("{value} in detail"));
        let requests = value.split(" of ").nth(1).and_then(|t| t.split(':').next()).and_then(|n| n.parse().ok());
        let result = GateResult { gate: "error-rate", verdict, value: value.into(), detail, samples: requests };
        vec![GateResult::pass("alarms", "OK"), result]
    }

    fn persisting(failure_limit: u32) -> Controller {
        let judging = Judging { failure_limit, inconclusive_fails: false };
        let mut c = Controller::new(steps(), secs(5)).judging(judging);
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done]);
        c
    }

    #[test]
    fn one_failing_check_followed_by_passing_ones_does_not_abort() {
        let mut c = persisting(2);
        assert_eq!(c.next(checked(rate(Verdict::Failed, "3% of 1000"), 5)), CheckGatesAfter { step: 0, wait: secs(5) });
        assert_eq!(
            c.next(checked(rate(Verdict::Passed, "0.5% of 2000"), 10)),
            CheckGatesAfter { step: 0, wait: secs(5) }
        );
        // A pass reset the count: one more failure is one in a row again.
        assert_eq!(
            c.next(checked(rate(Verdict::Failed, "3% of 2500"), 15)),
            CheckGatesAfter { step: 0, wait: secs(5) }
        );
        assert_eq!(c.next(checked(rate(Verdict::Passed, "0.5% of 3000"), 20)), ScaleCanary { step: 1, tasks: 2 });
        assert_eq!(c.table[0].result, StepResult::Passed);
    }

    #[test]
    fn a_failure_that_lasts_failure_limit_checks_aborts_and_says_how_many() {
        let mut c = persisting(3);
        assert_eq!(c.next(checked(rate(Verdict::Failed, "3% of 1000"), 5)), CheckGatesAfter { step: 0, wait: secs(5) });
        // An inconclusive check neither counts nor resets.
        assert_eq!(
            c.next(checked(rate(Verdict::Waiting, "3% of 1000"), 6)),
            CheckGatesAfter { step: 0, wait: secs(5) }
        );
        assert_eq!(
            c.next(checked(rate(Verdict::Failed, "3% of 1500"), 10)),
            CheckGatesAfter { step: 0, wait: secs(5) }
        );
        assert_eq!(c.next(checked(rate(Verdict::Failed, "3% of 2000"), 15)), SetWeights { stable: 100, canary: 0 });
        assert_eq!(
            c.abort_reason(),
            Some("error-rate gate failed 3 consecutive checks: 3% of 2000 (3% of 2000 in detail)")
        );
        assert_eq!(c.table[0].result, StepResult::Failed);
    }

    #[test]
    fn a_second_read_of_the_same_requests_is_not_a_second_failing_check() {
        let mut c = persisting(2);
        // Checks every 5 s, a metric published once a minute: the same 1000 requests three times.
        for elapsed in [5, 10, 15] {
            let same = checked(rate(Verdict::Failed, "3% of 1000"), elapsed);
            assert_eq!(c.next(same), CheckGatesAfter { step: 0, wait: secs(5) }, "at {elapsed}s");
        }
        assert_eq!(c.next(checked(rate(Verdict::Failed, "3% of 1900"), 16)), SetWeights { stable: 100, canary: 0 });
        assert_eq!(
            c.abort_reason(),
            Some("error-rate gate failed 2 consecutive checks: 3% of 1900 (3% of 1900 in detail)")
        );
        // Once the bake is over there is nothing more to wait for: the same requests count again.
        let mut c = persisting(2);
        assert_eq!(
            c.next(checked(rate(Verdict::Failed, "3% of 1000"), 20)),
            CheckGatesAfter { step: 0, wait: secs(5) }
        );
        assert_eq!(c.next(checked(rate(Verdict::Failed, "3% of 1000"), 25)), SetWeights { stable: 100, canary: 0 });
    }

    #[test]
    fn a_breach_aborts_at_once_whatever_the_failure_limit() {
        let mut c = persisting(3);
        let alarm = vec![GateResult::breach("alarms", "api-5xx in ALARM", "Threshold Crossed")];
        assert_eq!(c.next(checked(alarm, 5)), SetWeights { stable: 100, canary: 0 });
        assert_eq!(c.abort_reason(), Some("alarms gate failed: api-5xx in ALARM (Threshold Crossed)"));
    }

    #[test]
    fn a_gate_failing_when_the_bake_ends_is_looked_at_again_not_passed() {
        let mut c = persisting(2);
        assert_eq!(c.next(checked(rate(Verdict::Passed, "0% of 900"), 15)), CheckGatesAfter { step: 0, wait: secs(5) });
        assert_eq!(
            c.next(checked(rate(Verdict::Failed, "3% of 1000"), 20)),
            CheckGatesAfter { step: 0, wait: secs(5) }
        );
        assert_eq!(c.next(checked(rate(Verdict::Failed, "3% of 1200"), 25)), SetWeights { stable: 100, canary: 0 });
        // The failures of one step do not carry into the next.
        let mut c = persisting(2);
        drive(
            &mut c,
            vec![checked(rate(Verdict::Failed, "3% of 1000"), 20), checked(rate(Verdict::Passed, "0% of 1200"), 25)],
        );
        drive(&mut c, vec![Done, CanaryReady, Done, Done]);
        assert_eq!(c.next(checked(rate(Verdict::Failed, "3% of 1000"), 5)), CheckGatesAfter { step: 1, wait: secs(5) });
    }

    #[test]
    fn without_min_requests_a_gate_left_without_evidence_passes_the_step_unjudged_and_says_so() {
        let mut c = persisting(2);
        let thin = rate(Verdict::Waiting, "0% of 87: 87 of 459 requests needed");
        assert_eq!(c.next(checked(thin.clone(), 10)), CheckGatesAfter { step: 0, wait: secs(5) });
        assert!(c.take_unjudged().is_empty(), "mid-bake it is only waiting");
        assert_eq!(c.next(checked(thin, 20)), ScaleCanary { step: 1, tasks: 2 });
        let unjudged = c.take_unjudged();
        assert_eq!(unjudged.len(), 1);
        assert_eq!((unjudged[0].0, unjudged[0].1.gate), (0, "error-rate"));
        assert_eq!(c.table[0].gates[1].value, "⚠ not judged: 0% of 87: 87 of 459 requests needed");
        assert_eq!(c.table[0].result, StepResult::Passed);
        assert!(c.take_unjudged().is_empty(), "said once");
    }

    #[test]
    fn the_step_table_keeps_each_gates_last_value() {
        let mut c = Controller::new(steps(), secs(10));
        drive(&mut c, vec![Start, Done, CanaryReady, Done, Done]);
        let first = vec![GateResult::pass("error-rate", "0.1%")];
        let last = vec![GateResult::pass("error-rate", "0.3%")];
        c.next(checked(first, 10));
        c.next(checked(last.clone(), 20));
        assert_eq!(c.table[0].gates, last);
        assert_eq!(c.table[1].result, StepResult::Running);
    }
}
