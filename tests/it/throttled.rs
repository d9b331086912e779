//! Canaries while AWS throttles 40% of the calls at random (the stack's faults): the action's retries
//! and inconclusive gates must carry a healthy release through, and every run, whatever its end,
//! leaves each service consistent: traffic on one version, the canary idle, stable on one revision.

use serde_json::Value;
use tokio::time::Instant;

use crate::support::{Run, Stack, s, stack};

const SERVICES: [&str; 3] = ["api1", "api2", "api3"];
const THROTTLED: [&str; 3] = ["ecs", "elasticloadbalancing", "monitoring"];

/// The end state of one service: (weights stable/canary, canary desired count, stable revision).
async fn end_state(stack: &Stack, seeded: &Value) -> ((i32, i32), i32, String) {
    let sdk = stack.sdk().await;
    let (elb, ecs) = (aws_sdk_elasticloadbalancingv2::Client::new(&sdk), aws_sdk_ecs::Client::new(&sdk));
    let out = elb.describe_listeners().listener_arns(s(seeded, "listener_arn")).send().await.unwrap();
    let groups = out.listeners()[0].default_actions()[0].forward_config().unwrap().target_groups().to_vec();
    let weight = |key: &str| {
        groups.iter().find(|g| g.target_group_arn() == Some(s(seeded, key))).and_then(|g| g.weight()).unwrap()
    };
    let services = ecs
        .describe_services()
        .cluster("demo")
        .services(s(seeded, "service"))
        .services(s(seeded, "canary_service"))
        .send()
        .await
        .unwrap();
    let [stable, canary] = services.services() else { panic!("two services expected") };
    (
        (weight("stable_target_group_arn"), weight("canary_target_group_arn")),
        canary.desired_count(),
        stable.task_definition().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_40_percent_of_aws_calls_throttled_canaries_succeed_and_every_run_ends_consistent() {
    let stack = stack().await;
    let seeded: Vec<Value> = SERVICES
        .iter()
        .map(|name| stack.seed(&["--canary", "--service", name, "--desired", "2", "--alarms", &format!("{name}-5xx")]))
        .collect();
    let mut runs: Vec<(usize, Run)> = Vec::new();
    for round in 0..2u64 {
        for (i, service) in THROTTLED.iter().enumerate() {
            stack.throttle_randomly(service, 0.4, round * 10 + i as u64).await;
        }
        let mut before = Vec::new();
        for seeded in &seeded {
            before.push(end_state(&stack, seeded).await.2);
        }
        let started = Instant::now();
        let children: Vec<(usize, std::process::Child)> = seeded
            .iter()
            .enumerate()
            .map(|(i, seeded)| {
                let mut action = stack.action();
                action
                    .default_retries()
                    .env("ECS_DEPLOY_POLL_INTERVAL", "500ms")
                    .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo"])
                    .args(["--service", s(seeded, "service"), "--strategy", "canary"])
                    .args(["--listener-arn", s(seeded, "listener_arn"), "--alarms", &format!("{}-5xx", SERVICES[i])])
                    .args(["--canary-steps", "50%:3s, 100%", "--check-interval", "1s", "--max-error-rate", "5%"])
                    .args(["--wait-timeout", "2m"]);
                (i, action.spawn())
            })
            .collect();
        for (i, child) in children {
            runs.push((i, Run::from(child.wait_with_output().unwrap())));
        }
        let throttled = stack.throttled_calls().await;
        assert!(throttled > 30, "round {round}: only {throttled} calls were throttled");
        eprintln!("round {round}: {throttled} calls throttled");
        for service in THROTTLED {
            stack.throttle_randomly(service, 0.0, 0).await;
        }
        eprintln!("round {round}: three canaries in {:.0?}", started.elapsed());
        for (i, run) in &runs[runs.len() - 3..] {
            let (weights, canary_desired, stable) = end_state(&stack, &seeded[*i]).await;
            assert_eq!(weights, (100, 0), "{}: traffic must end on the stable service\n{run}", SERVICES[*i]);
            assert_eq!(canary_desired, 0, "{}: the canary must end idle\n{run}", SERVICES[*i]);
            match run.code {
                Some(0) => assert_ne!(stable, before[*i], "promoted\n{run}"),
                Some(1) => assert_eq!(stable, before[*i], "a failed run keeps stable on its revision\n{run}"),
                other => panic!("{}: exit {other:?}\n{run}", SERVICES[*i]),
            }
        }
    }
    let succeeded = runs.iter().filter(|(_, r)| r.code == Some(0)).count();
    let failures: Vec<String> = runs.iter().filter(|(_, r)| r.code != Some(0)).map(|(_, r)| r.to_string()).collect();
    assert!(succeeded >= 5, "{succeeded} of 6 canaries succeeded:\n{}", failures.join("\n"));
}
