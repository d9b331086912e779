//! What the run tells the world as it goes. The pipeline and the strategies emit typed events into a
//! `Progress` sink; the log printer and the GitHub reporter are sinks (a recorder serves tests), so
//! nothing that deploys knows about reporting, and a slow GitHub can never sit between a gate failure
//! and the traffic call: the report's sink hands each event to its own task and returns.

use std::time::Duration;

use crate::config::duration;
use crate::gha::Gha;
use crate::records::{GateResult, StepRecord, StoppedTask, Verdict};
use crate::text::family_revision;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event<'a> {
    /// A canary step begins (`step` is 0-based): its tasks are being started.
    StepStarted {
        step: usize,
        total: usize,
        weight: u8,
        bake: Duration,
        tasks: i32,
        revision: &'a str,
        service: &'a str,
    },
    /// While `label` bakes, step `next` (1-based)'s tasks are started; its weight comes after the bake.
    TasksPrestarted {
        label: &'a str,
        next: usize,
        tasks: i32,
        revision: &'a str,
        service: &'a str,
    },
    /// The weights were set and read back; `label` names the step (`step 2/3`) or `canary`.
    WeightsSet {
        label: &'a str,
        stable: i32,
        canary: i32,
    },
    /// An abort's traffic call is over: traffic is back on stable, or it could not be put back.
    Aborting {
        traffic_back: bool,
        reason: &'a str,
    },
    /// The gates were checked `elapsed` after the shift, of a bake of `bake` (zero: none).
    GatesChecked {
        label: &'a str,
        results: &'a [GateResult],
        elapsed: Duration,
        bake: Duration,
    },
    /// A wait with nothing new to say for a while (every `poll::HEARTBEAT`): what is awaited, what
    /// is seen now, for how long of how long.
    Waiting {
        what: &'a str,
        seen: &'a str,
        elapsed: Duration,
        timeout: Duration,
    },
    Promoting {
        service: &'a str,
        revision: &'a str,
    },
    ScalingCanaryToZero {
        service: &'a str,
        aborting: bool,
    },
    RestoringStable {
        service: &'a str,
        revision: &'a str,
    },
    /// SIGINT/SIGTERM arrived: the canary aborts.
    Cancelled,
    /// Rolling: the service (`cluster/service`) was updated to `revision`; the wait begins.
    RolloutStarted {
        service: &'a str,
        revision: &'a str,
        timeout: Duration,
    },
    RolloutCompleted {
        service: &'a str,
        revision: &'a str,
    },
    /// Rolling: the deployment failed and is left as it is (`rollback: false`).
    RolloutLeft {
        reason: &'a str,
    },
    /// Rolling: the deployment failed; `revision` is being restored, by ECS itself when `by_ecs`.
    RollingBack {
        service: &'a str,
        reason: &'a str,
        revision: &'a str,
        by_ecs: bool,
    },
    Restored {
        service: &'a str,
        revision: &'a str,
    },
    /// A gate passed without evidence (no request reached the canary during a step).
    NoEvidence {
        what: &'a str,
    },
    /// A successful run could not clean this up: a person must finish it.
    LeftBehind {
        what: &'a str,
    },
    /// The plan is resolved: the revision the first service runs now (`family:revision`), the plan
    /// itself for a dry run, and the canary's gates in one line.
    Planned {
        previous: &'a str,
        plan: Option<&'a str>,
        gates: Option<&'a str>,
        strategy: &'a str,
        /// Where the deployed service answers (a preview's URL).
        url: Option<&'a str>,
    },
    /// A stage of the run begins (`building the image`, `running the pre-deploy command`).
    StageStarted {
        what: &'a str,
    },
    /// The image to deploy, by digest; how it was built, when it was.
    ImageReady {
        uri: &'a str,
        build: Option<&'a str>,
    },
    /// A service's new revision (`family:revision`) is registered, to replace `previous`.
    Registered {
        service: &'a str,
        revision: &'a str,
        previous: &'a str,
    },
    /// Where one of several services stands now (`rolling out worker:3`, `restored to worker:2`).
    ServiceState {
        service: &'a str,
        state: &'a str,
    },
    /// The release's stopped tasks, each with why it stopped (a run that did not succeed).
    TasksStopped {
        tasks: &'a [StoppedTask],
    },
    /// Every service's strategy ended; `events` is what ECS said last about them, newest first.
    StrategiesEnded {
        events: &'a [String],
    },
    /// ECS's own strategy moved on (`service`): its status, lifecycle stage, green's share of
    /// production and test traffic, and whether it waits at a pause.
    EcsStage {
        service: &'a str,
        status: &'a str,
        stage: &'a str,
        production: f64,
        test: f64,
        paused: bool,
    },
    /// A pause of ECS's own strategy was answered (`proceed`: CONTINUE) or could not be (`why`).
    PauseAnswered {
        stage: &'a str,
        proceed: bool,
        why: &'a str,
    },
    /// What ECS said while we waited: a service event (`HH:MM:SS message`) or a task that stopped
    /// and why. Text we do not control: the log makes it inert.
    EcsSaid {
        line: &'a str,
    },
}

pub(crate) trait Progress {
    /// `table` is the step table as it stands.
    async fn emit(&mut self, event: Event<'_>, table: &[StepRecord]);
}

/// The job log: one line a thing that happened.
pub(crate) struct Log<'a>(pub(crate) &'a Gha);

impl Progress for Log<'_> {
    async fn emit(&mut self, event: Event<'_>, _table: &[StepRecord]) {
        let gha = self.0;
        match event {
            Event::StepStarted { step, total, weight, bake, tasks, revision, service } => {
                let bake =
                    if bake.is_zero() { "no bake".to_string() } else { format!("bake {}", duration::format(bake)) };
                gha.info(&format!(
                    "step {}/{total}: {weight}%, {bake}: running {tasks} task(s) of {} on {service}",
                    step + 1,
                    family_revision(revision)
                ));
            }
            Event::TasksPrestarted { label, next, tasks, revision, service } => gha.info(&format!(
                "{label}: baking; starting step {next}'s {tasks} task(s) of {} on {service} now (their weight comes when this step passes)",
                family_revision(revision)
            )),
            Event::WeightsSet { label, stable, canary } => {
                gha.info(&format!("{label}: weights now {stable}/{canary} (stable/canary)"));
            }
            Event::Aborting { .. } => {}
            Event::Waiting { what, seen, elapsed, timeout } => {
                let elapsed = Duration::from_secs(elapsed.as_secs());
                gha.info(&format!(
                    "waiting for {what}: {seen}, {} of {}",
                    duration::format(elapsed),
                    duration::format(timeout)
                ));
            }
            Event::GatesChecked { label, results, elapsed, bake } => {
                let verdict = if results.iter().any(|r| r.verdict == Verdict::Breached) {
                    "FAIL"
                } else if results.iter().any(|r| r.verdict == Verdict::Failed) {
                    "failing"
                } else if results.iter().all(GateResult::passed) {
                    "pass"
                } else {
                    "inconclusive"
                };
                let parts: Vec<String> = results.iter().map(|r| format!("{} {}", r.gate, r.value)).collect();
                let elapsed = Duration::from_secs(elapsed.as_secs_f64().round() as u64);
                let at = if bake.is_zero() {
                    format!("at {}", duration::format(elapsed))
                } else {
                    format!("(bake {}/{})", duration::format(elapsed.min(bake)), duration::format(bake))
                };
                gha.info(&format!("{label}: gates {verdict}: {} {at}", parts.join(", ")));
                // The numbers behind a failing check: samples, statistic, limit, test or breach.
                for r in results.iter().filter(|r| matches!(r.verdict, Verdict::Failed | Verdict::Breached)) {
                    gha.info(&format!("{label}: {} {}", r.gate, r.detail.as_deref().unwrap_or("failed")));
                }
                for r in results.iter().filter(|r| r.verdict == Verdict::Unreadable) {
                    gha.warning(&format!(
                        "{label}: the {} gate could not be read, checking again: {}",
                        r.gate,
                        r.detail.as_deref().unwrap_or("no detail")
                    ));
                }
            }
            Event::Promoting { service, revision } => gha.info(&format!("promote: {service} gets {}", family_revision(revision))),
            Event::ScalingCanaryToZero { service, aborting } => {
                gha.info(&format!("{}: scaling {service} to 0 tasks", if aborting { "abort" } else { "done" }));
            }
            Event::RestoringStable { service, revision } => {
                gha.info(&format!("abort: restoring {service} to {}", family_revision(revision)));
            }
            Event::Cancelled => {
                gha.warning("cancelled: aborting the canary (traffic back to the stable service first)")
            }
            Event::RolloutStarted { service, revision, timeout } => gha.info(&format!(
                "updated {service} to {}; waiting for ECS (timeout {})",
                family_revision(revision),
                duration::format(timeout)
            )),
            Event::RolloutCompleted { service, revision } => {
                gha.info(&format!("{service} runs {}: deployment completed", family_revision(revision)));
            }
            Event::RolloutLeft { reason } => {
                gha.warning(&format!("{reason}; rollback is off: the service is left as it is"));
            }
            Event::RollingBack { service, reason, revision, by_ecs } => {
                gha.warning(&format!("{reason}; restoring {service} to {}", family_revision(revision)));
                if by_ecs {
                    gha.info(&format!("ECS already took {service} back; waiting for it"));
                }
            }
            Event::Restored { service, revision } => gha.info(&format!("{service} is back on {}", family_revision(revision))),
            Event::NoEvidence { what } => gha.warning(what),
            Event::LeftBehind { what } => gha.warning(&format!("deployed, but left for you to finish: {what}")),
            Event::EcsSaid { line } => gha.info(line),
            Event::EcsStage { service, status, stage, production, test, paused } => {
                let pause = if paused { ", paused for the gates" } else { "" };
                gha.info(&format!(
                    "{service}: ECS {status} at {stage}: green has {production}% of production, {test}% of test traffic{pause}"
                ));
            }
            Event::PauseAnswered { stage, proceed: true, why } => gha.info(&format!("{stage}: {why}: ECS continues")),
            Event::PauseAnswered { stage, proceed: false, why } => gha.warning(&format!(
                "{stage}: the pause could not be answered ({why}); ECS rolls back when it times out"
            )),
            // For the report: the pipeline's own lines say these where the log needs them.
            Event::Planned { .. }
            | Event::StageStarted { .. }
            | Event::ImageReady { .. }
            | Event::Registered { .. }
            | Event::ServiceState { .. }
            | Event::TasksStopped { .. }
            | Event::StrategiesEnded { .. } => {}
        }
    }
}

/// No sink: a run without a report (no service to deploy) tells nobody.
impl<P: Progress> Progress for Option<P> {
    async fn emit(&mut self, event: Event<'_>, table: &[StepRecord]) {
        if let Some(sink) = self {
            sink.emit(event, table).await;
        }
    }
}

/// Two sinks, in order (the log first: it never waits on the network).
pub(crate) struct Tee<A, B>(pub(crate) A, pub(crate) B);

impl<A: Progress, B: Progress> Progress for Tee<A, B> {
    async fn emit(&mut self, event: Event<'_>, table: &[StepRecord]) {
        self.0.emit(event.clone(), table).await;
        self.1.emit(event, table).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::gha::Sink;

    /// Records what it was told, for tests of what a strategy emits.
    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl Progress for Recorder {
        async fn emit(&mut self, event: Event<'_>, table: &[StepRecord]) {
            self.0.push(format!("{event:?} ({} rows)", table.len()));
        }
    }

    fn log() -> (Gha, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink: Sink = buf.clone();
        (Gha::new(false, sink, None, None), buf)
    }

    #[tokio::test]
    async fn the_log_says_each_event_in_one_line_a_person_can_follow() {
        let (gha, buf) = log();
        let revision = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";
        let gates = [GateResult::pass("alarms", "OK")];
        let events = [
            Event::StepStarted {
                step: 1,
                total: 3,
                weight: 50,
                bake: Duration::from_secs(120),
                tasks: 2,
                revision,
                service: "web-canary",
            },
            Event::WeightsSet { label: "step 2/3", stable: 50, canary: 50 },
            Event::GatesChecked {
                label: "step 2/3",
                results: &gates,
                elapsed: Duration::from_millis(70_400),
                bake: Duration::from_secs(120),
            },
            Event::Waiting {
                what: "web-canary",
                seen: "1/2 running, 0/2 healthy",
                elapsed: Duration::from_millis(34_500),
                timeout: Duration::from_secs(900),
            },
            Event::Aborting { traffic_back: true, reason: "alarms gate failed" },
            Event::Promoting { service: "web", revision },
            Event::ScalingCanaryToZero { service: "web-canary", aborting: false },
        ];
        let mut both = Tee(Log(&gha), Recorder::default());
        for event in events {
            both.emit(event, &[]).await;
        }
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "step 2/3: 50%, bake 2m: running 2 task(s) of web:8 on web-canary",
                "step 2/3: weights now 50/50 (stable/canary)",
                "step 2/3: gates pass: alarms OK (bake 1m10s/2m)",
                "waiting for web-canary: 1/2 running, 0/2 healthy, 34s of 15m",
                "promote: web gets web:8",
                "done: scaling web-canary to 0 tasks",
            ]
        );
        // The second sink heard every event, in order, the log's silent ones too.
        assert_eq!(both.1.0.len(), 7);
        assert!(
            both.1.0[4].starts_with("Aborting { traffic_back: true, reason: \"alarms gate failed\" }"),
            "{:?}",
            both.1.0
        );
    }
}
