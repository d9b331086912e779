//! `keep-revisions` on the stack: after a successful deploy, the family keeps its newest N
//! revisions and loses exactly the older ones nothing uses: a revision another service of the
//! cluster runs and one an EventBridge schedule starts are kept, and said to be. A refused
//! deregistration is a warning; the deploy stays green.

use aws_sdk_ecs::types::{Compatibility, LaunchType, NetworkMode, TaskDefinitionStatus};
use aws_sdk_eventbridge::types::{EcsParameters, Target};

use crate::support::{Stack, stack};

fn deploy(stack: &Stack, version: &str) -> crate::support::Run {
    stack
        .action()
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
        .args(["--environment-variables", &format!("APP_VERSION={version}"), "--keep-revisions", "2"])
        .run()
}

async fn status(ecs: &aws_sdk_ecs::Client, revision: &str) -> TaskDefinitionStatus {
    let out = ecs.describe_task_definition().task_definition(revision).send().await.unwrap();
    out.task_definition().unwrap().status().unwrap().clone()
}

#[tokio::test]
async fn keep_revisions_deregisters_exactly_the_older_revisions_nothing_uses() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let ecs = stack.ecs().await;
    // web:2 to web:5, as four earlier deploys would have left them.
    let first = ecs.describe_task_definition().task_definition("web:1").send().await.unwrap();
    let td = first.task_definition().unwrap();
    for _ in 0..4 {
        ecs.register_task_definition()
            .family("web")
            .set_container_definitions(Some(td.container_definitions().to_vec()))
            .requires_compatibilities(Compatibility::Fargate)
            .network_mode(NetworkMode::Awsvpc)
            .cpu("256")
            .memory("512")
            .send()
            .await
            .unwrap();
    }
    // web:2 is another service's (idle, but ECS would run it again); a nightly schedule starts web:3.
    let web = ecs.describe_services().cluster("demo").services("web").send().await.unwrap();
    let network = web.services()[0].network_configuration().cloned();
    ecs.create_service()
        .cluster("demo")
        .service_name("web-batch")
        .task_definition("web:2")
        .desired_count(0)
        .launch_type(LaunchType::Fargate)
        .set_network_configuration(network)
        .send()
        .await
        .unwrap();
    let events = aws_sdk_eventbridge::Client::new(&stack.sdk().await);
    events.put_rule().name("nightly").schedule_expression("rate(1 day)").send().await.unwrap();
    let web3 = s_arn(s_td(&seeded), 3);
    let target = Target::builder()
        .id("1")
        .arn("arn:aws:ecs:us-east-1:123456789012:cluster/demo")
        .role_arn("arn:aws:iam::123456789012:role/ecsEventsRole")
        .ecs_parameters(EcsParameters::builder().task_definition_arn(&web3).build().unwrap())
        .build()
        .unwrap();
    events.put_targets().rule("nightly").targets(target).send().await.unwrap();

    let run = deploy(&stack, "v2");
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("keep-revisions 2: deregistered web:4, web:1; kept, in use: web:3 (a scheduled task), web:2 (service web-batch)"),
        "{run}"
    );
    for (revision, expected) in [
        ("web:1", TaskDefinitionStatus::Inactive),
        ("web:2", TaskDefinitionStatus::Active),
        ("web:3", TaskDefinitionStatus::Active),
        ("web:4", TaskDefinitionStatus::Inactive),
        ("web:5", TaskDefinitionStatus::Active),
        ("web:6", TaskDefinitionStatus::Active),
    ] {
        assert_eq!(status(&ecs, revision).await, expected, "{revision}");
    }

    // A refused deregistration: said, and the deploy succeeds all the same.
    stack.throttle("ecs", Some("DeregisterTaskDefinition"), 1.0).await;
    let run = deploy(&stack, "v3");
    stack.throttle("ecs", Some("DeregisterTaskDefinition"), 0.0).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("keep-revisions: old revisions were not pruned")
            && run.stdout.contains("could not deregister web:5"),
        "{run}"
    );
    assert_eq!(status(&ecs, "web:5").await, TaskDefinitionStatus::Active);
}

fn s_td(seeded: &serde_json::Value) -> &str {
    seeded["task_definition_arn"].as_str().unwrap()
}

/// The ARN of `revision` of the family of `arn`.
fn s_arn(arn: &str, revision: u32) -> String {
    format!("{}:{revision}", arn.rsplit_once(':').unwrap().0)
}
