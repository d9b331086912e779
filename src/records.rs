//! What the run found: the canary's checks step by step (the records the controller keeps) and the
//! stopped tasks of a failed release, as data the plan, the events, the log and the report read
//! without depending on the controller or on ECS.

use std::time::Duration;

/// What one check of one gate concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Passed,
    /// Past its limit at this check. A gate that can be noisy (error rate, latency, probe) fails its
    /// step only after `failure-limit` such checks in a row.
    Failed,
    /// Past its limit beyond doubt: an alarm in ALARM (CloudWatch already wanted its datapoints), a
    /// target ELB took out (it already counted its failed health checks), or a rate or latency ten
    /// times its limit on enough requests. Fails the step at once: waiting would be worse.
    Breached,
    /// The gate could not be read (AWS throttled or did not answer): no verdict either way. Checked
    /// again; a step fails after `MAX_UNREADABLE` such checks in a row.
    Unreadable,
    /// Too little evidence yet (fewer requests than the statistic needs, or than `min-requests`; a
    /// rate above its limit but not beyond chance): no verdict, and it neither counts towards
    /// `failure-limit` nor resets it. Never a pass: a step whose bake ends on it fails when the user
    /// set `min-requests`, and otherwise passes with a warning naming what the gate could not judge.
    Waiting,
}

/// One gate's verdict at one check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GateResult {
    /// `alarms`, `target-health`, `error-rate`, `latency` or `probe`.
    pub(crate) gate: &'static str,
    pub(crate) verdict: Verdict,
    /// The observed value, as shown in the step table (`OK`, `0.4%`, `HTTP 200`, `2/2 healthy`).
    pub(crate) value: String,
    /// The evidence when it did not pass (alarm name and reason, probe error, what AWS said).
    pub(crate) detail: Option<String>,
    /// The canary requests behind a rate or latency verdict: a failing check counts towards
    /// `failure-limit` only on requests the last one had not seen (re-reading the same metric
    /// datapoint is not a second look).
    pub(crate) samples: Option<u64>,
}

impl GateResult {
    pub(crate) fn pass(gate: &'static str, value: impl Into<String>) -> Self {
        GateResult { gate, verdict: Verdict::Passed, value: value.into(), detail: None, samples: None }
    }

    pub(crate) fn fail(gate: &'static str, value: impl Into<String>, detail: impl Into<String>) -> Self {
        GateResult { gate, verdict: Verdict::Failed, value: value.into(), detail: Some(detail.into()), samples: None }
    }

    pub(crate) fn breach(gate: &'static str, value: impl Into<String>, detail: impl Into<String>) -> Self {
        GateResult { gate, verdict: Verdict::Breached, value: value.into(), detail: Some(detail.into()), samples: None }
    }

    pub(crate) fn waiting(gate: &'static str, value: impl Into<String>, detail: impl Into<String>) -> Self {
        GateResult { gate, verdict: Verdict::Waiting, value: value.into(), detail: Some(detail.into()), samples: None }
    }

    /// The same verdict, from `requests` canary requests.
    pub(crate) fn on(mut self, requests: f64) -> Self {
        self.samples = Some(requests.max(0.0).round() as u64);
        self
    }

    pub(crate) fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }

    /// `error-rate gate failed: 3% (…)`: what a failure or an inconclusive end says.
    pub(crate) fn describe(&self, what: &str) -> String {
        match &self.detail {
            Some(d) => format!("{} gate {what}: {} ({d})", self.gate, self.value),
            None => format!("{} gate {what}: {}", self.gate, self.value),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StepResult {
    Pending,
    Running,
    Passed,
    Failed,
}

/// One row of the step table, kept for the report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepRecord {
    pub(crate) weight: u8,
    pub(crate) bake: Duration,
    pub(crate) canary_tasks: i32,
    /// Each gate's last result at this step.
    pub(crate) gates: Vec<GateResult>,
    pub(crate) result: StepResult,
    /// Time from the step's start until it passed or failed.
    pub(crate) took: Option<Duration>,
}

impl StepRecord {
    /// A step not started yet: its weight, bake and tasks as planned.
    pub(crate) fn pending(weight: u8, bake: Duration, canary_tasks: i32) -> Self {
        StepRecord { weight, bake, canary_tasks, gates: Vec::new(), result: StepResult::Pending, took: None }
    }
}

/// One stopped container.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Container {
    pub(crate) name: String,
    /// `exit code 3`, `OutOfMemoryError: …`, `no exit code`.
    pub(crate) ended: String,
    /// Its last log lines, oldest first; empty without `awslogs`.
    pub(crate) last_lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoppedTask {
    pub(crate) id: String,
    /// Its task definition, `family:revision` (which service's release it was).
    pub(crate) revision: String,
    pub(crate) reason: String,
    pub(crate) containers: Vec<Container>,
}
