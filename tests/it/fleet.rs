//! Twenty services of one cluster in one run, as a monorepo deploys its workers: every one rolls out
//! its own new revision; the reads while they wait are shared (one DescribeServices a look for ten
//! services, stopped tasks asked for only when a count says one stopped), counted by the stack where
//! the calls arrive; and with `parallel`, one service that cannot start stops the run and every
//! service ends on the revision it had.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Stack, output, s, stack};

const POLL: Duration = Duration::from_millis(50);

async fn calls(stack: &Stack) -> Value {
    reqwest::get(format!("{}/_stack/calls", stack.endpoint)).await.unwrap().json().await.unwrap()
}

async fn reset_calls(stack: &Stack) {
    let r = reqwest::Client::new().post(format!("{}/_stack/calls", stack.endpoint)).send().await.unwrap();
    assert!(r.status().is_success());
}

/// What each service runs, `family:revision`, in `names`' order.
async fn revisions(ecs: &aws_sdk_ecs::Client, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in names.chunks(10) {
        let described =
            ecs.describe_services().cluster("demo").set_services(Some(chunk.to_vec())).send().await.unwrap();
        for name in chunk {
            let svc = described.services().iter().find(|s| s.service_name() == Some(name)).unwrap();
            out.push(svc.task_definition().unwrap().rsplit('/').next().unwrap().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_services_roll_out_together_on_shared_reads_and_one_failure_leaves_all_as_they_were() {
    let stack = stack().await;
    let web = stack.seed(&["--desired", "1"]);
    // One worker crashes at start once FEATURE_X is set (a release it cannot take).
    stack.seed(&["--service", "fragile", "--desired", "1", "--env", "CRASH_WHEN_SET=FEATURE_X"]);
    let ecs = stack.ecs().await;
    let described = ecs.describe_services().cluster("demo").services("web").send().await.unwrap();
    let base = described.services()[0].clone();
    let mut names: Vec<String> = vec!["web".into(), "fragile".into()];
    for i in 1..=18 {
        let name = format!("worker-{i}");
        ecs.create_service()
            .cluster("demo")
            .service_name(&name)
            .task_definition(s(&web, "task_definition_arn"))
            .desired_count(1)
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .set_network_configuration(base.network_configuration().cloned())
            .send()
            .await
            .unwrap();
        names.push(name);
    }
    let start = Instant::now();
    loop {
        let mut running = 0;
        for chunk in names.chunks(10) {
            let d = ecs.describe_services().cluster("demo").set_services(Some(chunk.to_vec())).send().await.unwrap();
            let settled = |s: &&aws_sdk_ecs::types::Service| {
                let done =
                    s.deployments().first().and_then(|d| d.rollout_state()).map(|r| r.as_str()) == Some("COMPLETED");
                s.running_count() == 1 && s.deployments().len() == 1 && done
            };
            running += d.services().iter().filter(settled).count();
        }
        if running == names.len() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "the twenty services did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = names.join(",");
    let deploy = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let outputs = dir.path().join("outputs");
        let mut run = stack
            .action()
            .env("GITHUB_OUTPUT", &outputs)
            .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", &all])
            .args(extra)
            .run();
        run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
        run
    };

    reset_calls(&stack).await;
    let started = Instant::now();
    let good = deploy(&["--environment-variables", "APP_VERSION=2"]);
    let looks = started.elapsed().as_secs_f64() / POLL.as_secs_f64();
    assert_eq!(good.code, Some(0), "{good}");
    let deployed = revisions(&ecs, &names).await;
    let before: Vec<String> = vec![s(&web, "task_definition_arn").rsplit('/').next().unwrap().to_string()];
    assert!(
        deployed.iter().all(|r| !before.contains(r) && r != "fragile:1"),
        "every service on a new revision: {deployed:?}"
    );
    let counted = calls(&stack).await;
    let (describe, list) =
        (counted["ecs:DescribeServices"].as_f64().unwrap_or(0.0), counted["ecs:ListTasks"].as_f64().unwrap_or(0.0));
    // Each service asking on its own would be twenty DescribeServices a look (measured: 539 where this
    // took 152, over some 150 looks of wall time), and a ListTasks each a look before the counts decided.
    assert!(describe <= 60.0 + looks, "{describe} DescribeServices over about {looks:.0} looks: {counted}");
    assert!(list <= 4.0 * names.len() as f64, "{list} ListTasks over about {looks:.0} looks: {counted}");

    // The fragile worker first, five at a time: it fails while others wait for their turn.
    let mut ordered = names.clone();
    ordered.retain(|n| n != "fragile");
    ordered.insert(0, "fragile".into());
    let ordered = ordered.join(",");
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut bad = stack
        .action()
        .env("GITHUB_OUTPUT", &outputs)
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", &ordered])
        .args(["--parallel", "5", "--environment-variables", "APP_VERSION=3\nFEATURE_X=1"])
        .run();
    bad.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    assert_eq!(bad.code, Some(1), "{bad}");
    assert!(bad.stdout.contains("at once:  5 of the 20 services at a time"), "{bad}");
    assert_eq!(revisions(&ecs, &names).await, deployed, "every service on the revision it had");
    let services: Value = serde_json::from_str(&output(&bad, "services")).unwrap();
    let statuses: Vec<&str> = services.as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.len(), 20);
    assert!(statuses.iter().all(|s| *s == "rolled-back"), "{statuses:?}");
    assert_eq!(output(&bad, "status"), "rolled-back");
}
