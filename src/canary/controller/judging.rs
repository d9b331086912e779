//! How a step's checks become its verdict: each gate's failing checks counted in a row (on new
//! requests only, while the bake lasts), a breach failing the step at once, a failing or unreadable
//! gate looked at again when the bake ends, and a gate left without evidence failing the step or
//! passing it unjudged.

use std::time::Duration;

use super::{Action, Controller, MAX_UNREADABLE, Phase, RECHECK};
use crate::canary::gates;
use crate::records::{GateResult, StepResult, Verdict};

impl Controller {
    /// The next action after the gates of step `i` were checked `elapsed` after its shift.
    pub(super) fn judge(&mut self, i: usize, mut results: Vec<GateResult>, elapsed: Duration) -> Action {
        let bake = self.steps[i].bake;
        let counts = self.count_failures(&results, elapsed >= bake);
        let limit = self.judging.failure_limit;
        // A breach fails the step at once; a failure once it has lasted `failure-limit` checks.
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
            self.table[i].gates = results;
            self.table[i].result = StepResult::Failed;
            return self.begin_abort(failed.join("; "));
        }
        if self.unreadable_in_a_row >= MAX_UNREADABLE {
            self.table[i].gates = results;
            self.table[i].result = StepResult::Failed;
            return self.begin_abort(format!(
                "{} checks in a row could not read every gate, so the canary is not being watched: {}",
                self.unreadable_in_a_row,
                unreadable.join("; ")
            ));
        }
        if elapsed < bake {
            self.table[i].gates = results;
            return Action::CheckGatesAfter { step: i, wait: self.check_interval.min(bake - elapsed) };
        }
        // The bake is over: a step passes on evidence only. An unreadable gate is asked
        // again soon (bounded by MAX_UNREADABLE); a failing one one interval later, until
        // it passes or reaches `failure-limit`.
        if !unreadable.is_empty() || failing {
            self.table[i].gates = results;
            let wait = if failing { self.check_interval } else { self.check_interval.min(RECHECK) };
            return Action::CheckGatesAfter { step: i, wait };
        }
        if !waiting.is_empty() && self.judging.inconclusive_fails {
            self.table[i].gates = results;
            self.table[i].result = StepResult::Failed;
            return self.begin_abort(format!("inconclusive at the end of the bake: {}", waiting.join("; ")));
        }
        // Passed without the verdict of a gate that had too little evidence: said, and
        // marked in the table.
        for r in results.iter_mut().filter(|r| r.verdict == Verdict::Waiting) {
            self.unjudged.push((i, r.clone()));
            r.value = match r.value.as_str() {
                gates::NO_REQUESTS_YET => gates::NO_REQUESTS_IN_STEP.into(),
                value => format!("⚠ not judged: {value}"),
            };
        }
        self.table[i].gates = results;
        self.table[i].result = StepResult::Passed;
        if i + 1 < self.steps.len() {
            self.scale(i + 1)
        } else {
            self.phase = Phase::Promoting;
            self.promotion_started = true;
            Action::Promote
        }
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
