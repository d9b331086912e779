//! The canary executor's event sequence, through a recording sink, with the local stack underneath
//! (real containers, HAProxy, metrics): a promotion, and a cancellation at each phase of a step,
//! each ending with traffic back first. Needs the stack: run through scripts/test.

use std::time::Duration;

use tokio::sync::watch;

use super::deploy::{self, CanaryRun};
use crate::aws::{Aws, ambient_config};
use crate::config::{Config, Inputs};
use crate::ecs::{rollout, taskdef};
use crate::gha::{Gha, Sink};
use crate::outcome::Outcome;
use crate::plan::{self, StrategyPlan};
use crate::progress::{Event, Progress};
use crate::records::StepRecord;

/// Records each event's name, and sends SIGTERM's stand-in (the cancel flag) when it hears `cancel_at`.
struct Recorder {
    names: Vec<String>,
    cancel_at: Option<&'static str>,
    cancel: watch::Sender<bool>,
}

impl Progress for Recorder {
    async fn emit(&mut self, event: Event<'_>, _table: &[StepRecord]) {
        let name = match &event {
            // What ECS says comes when it comes: not part of the executor's sequence.
            Event::EcsSaid { .. } => return,
            Event::StepStarted { step, .. } => format!("StepStarted({step})"),
            Event::WeightsSet { stable, canary, .. } => format!("WeightsSet({stable}/{canary})"),
            Event::Aborting { traffic_back, .. } => format!("Aborting(traffic back: {traffic_back})"),
            Event::GatesChecked { .. } => "GatesChecked".into(),
            Event::TasksPrestarted { next, .. } => format!("TasksPrestarted({next})"),
            Event::Promoting { .. } => "Promoting".into(),
            Event::ScalingCanaryToZero { aborting, .. } => format!("ScalingCanaryToZero(abort: {aborting})"),
            Event::RestoringStable { .. } => "RestoringStable".into(),
            Event::Cancelled => "Cancelled".into(),
            other => format!("{other:?}"),
        };
        if self.cancel_at.is_some_and(|at| name.starts_with(at)) && !*self.cancel.borrow() {
            let _ = self.cancel.send(true);
        }
        // Checks repeat during a bake: one entry for a run of them.
        if !(name == "GatesChecked" && self.names.last().is_some_and(|n| n == "GatesChecked")) {
            self.names.push(name);
        }
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test runs the canary on the local stack; run scripts/test, or eval \"$(scripts/stack up)\" and export DEMO_IMAGE=$(scripts/demo-image)")
    })
}

/// A seeded canary setup and one run of the executor on it, cancelled at `cancel_at`.
async fn run(cancel_at: Option<&'static str>) -> (Vec<String>, Outcome) {
    let endpoint = env("AWS_ENDPOINT_URL");
    let reset = reqwest::Client::new().post(format!("{endpoint}/moto-api/reset")).send().await;
    assert!(reset.is_ok_and(|r| r.status().is_success()), "could not reset the stack at {endpoint}");
    let seed = std::process::Command::new(env("STACK_PYTHON"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tools/seed.py"))
        .args(["--canary", "--desired", "2"])
        .output()
        .expect("run scripts/tools/seed.py");
    assert!(seed.status.success(), "{}", String::from_utf8_lossy(&seed.stderr));
    let seeded: serde_json::Value = serde_json::from_slice(&seed.stdout).expect("seed prints JSON");
    let listener = seeded["listener_arn"].as_str().expect("a listener");
    let image = env("DEMO_IMAGE");
    let args = [
        "ecs-deploy-action",
        "--aws-region",
        "us-east-1",
        "--aws-endpoint-url",
        &endpoint,
        "--image",
        &image,
        "--cluster",
        "demo",
        "--service",
        "web",
        "--strategy",
        "canary",
        "--listener-arn",
        listener,
        "--canary-steps",
        "50%:1s, 100%",
        "--check-interval",
        "1s",
    ];
    let inputs = Inputs::from_env_and_args(|_| None, args).expect("inputs");
    let config = Config::from_inputs(&inputs, |_| None).expect("a valid config");
    let aws = Aws::new(ambient_config(&config.aws).await, None);
    let plan = plan::resolve(
        &config,
        &aws,
        &Gha::new(false, std::sync::Arc::new(std::sync::Mutex::new(std::io::sink())), None, None),
    )
    .await
    .expect("a plan");
    let deploy_plan = plan.deploy.expect("a deploy");
    let web = deploy_plan.first();
    let StrategyPlan::Canary(canary) = &web.strategy else { panic!("not a canary plan") };
    let mut rendered = web.rendered.clone();
    taskdef::set_image(&mut rendered, &image);
    let revision =
        crate::ecs::register::register(&aws.ecs, &rendered.task_definition, &web.tags).await.expect("registered");
    let (tx, rx) = watch::channel(false);
    let release = rollout::Release {
        cluster: "demo",
        service: "web",
        revision: &revision,
        previous: &web.previous_task_definition_arn,
        wait_timeout: Duration::from_secs(60),
        poll: rollout::Poll { first: Duration::from_millis(50), max: Duration::from_millis(50) },
        cancel: crate::stop::Stop::new(rx, None),
        desired: None,
        started: Default::default(),
        reads: None,
    };
    let run = crate::all_or_nothing::Run::new(1, true);
    let r = CanaryRun { aws: &aws, plan: canary, release, run: &run };
    let sink: Sink = std::sync::Arc::new(std::sync::Mutex::new(std::io::sink()));
    let gha = Gha::new(false, sink, None, None);
    let mut recorder = Recorder { names: Vec::new(), cancel_at, cancel: tx };
    let result = deploy::run(r, &mut recorder, &gha).await;
    (recorder.names, result.outcome)
}

#[tokio::test]
async fn the_executor_promotes_and_aborts_from_every_phase_of_a_step_traffic_first() {
    let (events, outcome) = run(None).await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(
        events,
        [
            "StepStarted(0)",
            "WeightsSet(50/50)",
            // Step 2's tasks start while step 1 bakes.
            "TasksPrestarted(2)",
            "GatesChecked",
            "StepStarted(1)",
            "WeightsSet(0/100)",
            "GatesChecked",
            "Promoting",
            "WeightsSet(100/0)",
            "ScalingCanaryToZero(abort: false)",
        ]
    );

    // Cancelled while the step's tasks start, right after the shift, while the next step's tasks
    // start, and mid-bake: the abort's
    // first call is the traffic call, then the canary goes to zero; the stable service was never
    // changed, so it is not restored.
    let abort = ["Cancelled", "WeightsSet(100/0)", "Aborting(traffic back: true)", "ScalingCanaryToZero(abort: true)"];
    for (at, before) in [
        ("StepStarted(0)", vec!["StepStarted(0)"]),
        ("WeightsSet(50/50)", vec!["StepStarted(0)", "WeightsSet(50/50)"]),
        ("TasksPrestarted", vec!["StepStarted(0)", "WeightsSet(50/50)", "TasksPrestarted(2)"]),
        ("GatesChecked", vec!["StepStarted(0)", "WeightsSet(50/50)", "TasksPrestarted(2)", "GatesChecked"]),
    ] {
        let (events, outcome) = run(Some(at)).await;
        let expected: Vec<&str> = before.into_iter().chain(abort).collect();
        assert_eq!(events, expected, "cancelled at {at}");
        assert!(matches!(outcome, Outcome::RolledBack { .. }), "cancelled at {at}: {outcome:?}");
    }
}
