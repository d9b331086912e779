//! How checks of the gates become a verdict, for a canary step or a pause of ECS's own strategy:
//! each gate's failing checks counted in a row (on new requests only, while the bake lasts), a breach
//! failing at once, a failing or unreadable gate looked at again when the bake ends, and a gate left
//! without evidence failing or passing unjudged.

use std::time::Duration;

use super::{Action, Controller, MAX_UNREADABLE, Phase, RECHECK};
use crate::canary::gates;
use crate::records::{GateResult, StepResult, Verdict};

/// How checks become a verdict: failing checks in a row before a noisy gate fails, and whether a gate
/// still inconclusive when the bake ends fails (the user set `min-requests`) or passes unjudged, with
/// a warning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Judging {
    pub(crate) failure_limit: u32,
    /// A gate still without evidence when the bake ends fails (`min-requests` set) rather than
    /// passing unjudged with a warning.
    pub(crate) inconclusive_fails: bool,
}

/// What a judge concluded from one check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Judgement {
    /// Why it failed (each failing gate described).
    Failed(String),
    /// No verdict yet: check again after this long.
    CheckAgainAfter(Duration),
    /// Passed; the gates that had too little evidence are returned, for a warning.
    Passed { unjudged: Vec<GateResult> },
}

/// The state of judging one window (a canary step, a pause): failing checks in a row per gate, and
/// unreadable checks in a row.
#[derive(Debug, Clone)]
pub(crate) struct Judge {
    judging: Judging,
    check_interval: Duration,
    /// Consecutive checks with an unreadable gate.
    unreadable_in_a_row: u32,
    /// Per gate, its failing checks in a row in the window, and the requests the last one saw.
    failing_in_a_row: Vec<(&'static str, u32, Option<u64>)>,
}

impl Judge {
    pub(crate) fn new(judging: Judging, check_interval: Duration) -> Self {
        let judging = Judging { failure_limit: judging.failure_limit.max(1), ..judging };
        Judge { judging, check_interval, unreadable_in_a_row: 0, failing_in_a_row: Vec::new() }
    }

    /// A new window: failures of the last one do not carry over.
    pub(crate) fn new_window(&mut self) {
        self.failing_in_a_row.clear();
    }

    /// The verdict after `results`, checked `elapsed` into a window that bakes for `bake`. Gates
    /// passed without evidence are marked in `results` (`⚠ not judged: …`).
    pub(crate) fn judge(&mut self, results: &mut [GateResult], elapsed: Duration, bake: Duration) -> Judgement {
        let counts = self.count_failures(results, elapsed >= bake);
        let limit = self.judging.failure_limit;
        // A breach fails at once; a failure once it has lasted `failure-limit` checks.
        let failed: Vec<String> = results
            .iter()
            .zip(&counts)
            .filter(|(r, n)| r.verdict == Verdict::Breached || (r.verdict == Verdict::Failed && **n >= limit))
            .map(|(r, n)| match r.verdict {
                Verdict::Failed if limit > 1 => r.describe(&format!("failed {n} consecutive checks")),
                _ => r.describe("failed"),
            })
            .collect();
        let failing = results.iter().any(|r| r.verdict == Verdict::Failed);
        let unreadable: Vec<String> = results
            .iter()
            .filter(|r| r.verdict == Verdict::Unreadable)
            .map(|r| r.describe("could not be read"))
            .collect();
        let waiting: Vec<String> = results
            .iter()
            .filter(|r| r.verdict == Verdict::Waiting)
            .map(|r| r.describe("had too little evidence"))
            .collect();
        self.unreadable_in_a_row = if unreadable.is_empty() { 0 } else { self.unreadable_in_a_row + 1 };
        if !failed.is_empty() {
            return Judgement::Failed(failed.join("; "));
        }
        if self.unreadable_in_a_row >= MAX_UNREADABLE {
            return Judgement::Failed(format!(
                "{} checks in a row could not read every gate, so the release is not being watched: {}",
                self.unreadable_in_a_row,
                unreadable.join("; ")
            ));
        }
        if elapsed < bake {
            return Judgement::CheckAgainAfter(self.check_interval.min(bake - elapsed));
        }
        // The bake is over: a pass is on evidence only. An unreadable gate is asked again soon
        // (bounded by MAX_UNREADABLE); a failing one one interval later, until it passes or reaches
        // `failure-limit`.
        if !unreadable.is_empty() || failing {
            let wait = if failing { self.check_interval } else { self.check_interval.min(RECHECK) };
            return Judgement::CheckAgainAfter(wait);
        }
        if !waiting.is_empty() && self.judging.inconclusive_fails {
            return Judgement::Failed(format!("inconclusive at the end of the bake: {}", waiting.join("; ")));
        }
        // Passed without the verdict of a gate that had too little evidence: said, and marked.
        let mut unjudged = Vec::new();
        for r in results.iter_mut().filter(|r| r.verdict == Verdict::Waiting) {
            unjudged.push(r.clone());
            r.value = match r.value.as_str() {
                gates::NO_REQUESTS_YET => gates::NO_REQUESTS_IN_STEP.into(),
                value => format!("⚠ not judged: {value}"),
            };
        }
        Judgement::Passed { unjudged }
    }

    /// Counts each gate's failing checks in a row: a failure adds one, a pass resets it, and an
    /// inconclusive or unreadable check leaves it as it was. During the bake a failure counts only on
    /// requests the last counted one had not seen (a second read of the same metric datapoint is not
    /// a second look); once the bake is over there is no more evidence to wait for, and each counts.
    /// Returns each gate's count after `results`.
    fn count_failures(&mut self, results: &[GateResult], bake_over: bool) -> Vec<u32> {
        results
            .iter()
            .map(|r| {
                let at = match self.failing_in_a_row.iter().position(|(g, ..)| *g == r.gate) {
                    Some(at) => at,
                    None => {
                        self.failing_in_a_row.push((r.gate, 0, None));
                        self.failing_in_a_row.len() - 1
                    }
                };
                let (_, count, seen) = &mut self.failing_in_a_row[at];
                match r.verdict {
                    Verdict::Failed if !bake_over && r.samples.is_some() && r.samples == *seen => {}
                    Verdict::Failed | Verdict::Breached => {
                        *count += 1;
                        *seen = r.samples;
                    }
                    Verdict::Passed => (*count, *seen) = (0, None),
                    Verdict::Waiting | Verdict::Unreadable => {}
                }
                *count
            })
            .collect()
    }
}

impl Controller {
    /// The next action after the gates of step `i` were checked `elapsed` after its shift.
    pub(super) fn judge(&mut self, i: usize, mut results: Vec<GateResult>, elapsed: Duration) -> Action {
        let judgement = self.judge.judge(&mut results, elapsed, self.steps[i].bake);
        self.table[i].gates = results;
        match judgement {
            Judgement::Failed(why) => {
                self.table[i].result = StepResult::Failed;
                self.begin_abort(why)
            }
            Judgement::CheckAgainAfter(wait) => Action::CheckGatesAfter { step: i, wait },
            Judgement::Passed { unjudged } => {
                self.unjudged.extend(unjudged.into_iter().map(|r| (i, r)));
                self.table[i].result = StepResult::Passed;
                if i + 1 < self.steps.len() {
                    self.scale(i + 1)
                } else {
                    self.phase = Phase::Promoting;
                    self.promotion_started = true;
                    Action::Promote
                }
            }
        }
    }
}
