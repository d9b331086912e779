//! Rolling deploys against the stack's ECS, whose tasks are real containers of the demo app: the new
//! revision differs from the old one only in image and environment, a release that crashes (never
//! stable, or tripping the circuit breaker) ends on the previous revision with the stopped tasks'
//! reasons and exit codes printed, bad container choices register nothing, and a deploy succeeds
//! with a fifth of its ECS calls throttled.

use std::time::Duration;

use aws_sdk_ecs::types::{KeyValuePair, TaskDefinition};

use crate::report::live_commands;
use crate::support::{Run, Stack, output, s, stack};

fn deploy(stack: &Stack, seeded: &serde_json::Value, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut run = stack
        .action()
        .env("GITHUB_OUTPUT", &outputs)
        .args([
            "--aws-region",
            &stack.region,
            "--image",
            &stack.image,
            "--cluster",
            s(seeded, "cluster"),
            "--service",
            s(seeded, "service"),
        ])
        .args(extra)
        .run();
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    run
}

async fn service_revision(stack: &Stack) -> String {
    let out = stack.ecs().await.describe_services().cluster("demo").services("web").send().await.unwrap();
    out.services()[0].task_definition().unwrap().to_string()
}

async fn task_definition(stack: &Stack, arn: &str) -> TaskDefinition {
    let out = stack.ecs().await.describe_task_definition().task_definition(arn).send().await.unwrap();
    out.task_definition().unwrap().clone()
}

/// `json` written to a task definition file; keep the directory while the file is used.
fn taskdef_file(json: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taskdef.json");
    std::fs::write(&file, json).unwrap();
    let path = file.to_str().unwrap().to_string();
    (dir, path)
}

/// A task definition without what ECS sets itself, to compare what a user wrote.
fn as_written(mut td: TaskDefinition) -> TaskDefinition {
    td.task_definition_arn = None;
    td.revision = 0;
    td.status = None;
    td.registered_at = None;
    td.registered_by = None;
    td.requires_attributes = None;
    td.compatibilities = None;
    td
}

#[tokio::test]
async fn a_rolling_deploy_changes_only_image_and_environment_and_reports_outputs() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "3"]);
    let run = deploy(&stack, &seeded, &["--environment-variables", "LOG_LEVEL=debug\nAPP_ENV=staging"]);
    assert_eq!(run.code, Some(0), "{run}");
    let new_arn = output(&run, "task-definition-arn");
    let old_arn = output(&run, "previous-task-definition-arn");
    assert_eq!(old_arn, s(&seeded, "task_definition_arn"));
    assert_eq!(output(&run, "status"), "succeeded");
    assert_eq!(service_revision(&stack).await, new_arn);
    assert!(run.stdout.contains("(service web) has reached a steady state."), "ECS events are printed:\n{run}");
    assert!(run.stdout.contains("deployment completed"), "{run}");
    // The run's last line is its result: what was deployed, how, in how long.
    let last = run.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.starts_with("notice: Deployed: demo/web → web:2, rolling, "), "the last line is the result:\n{run}");

    let new = as_written(task_definition(&stack, &new_arn).await);
    let mut old = as_written(task_definition(&stack, &old_arn).await);
    let container = &mut old.container_definitions.as_mut().unwrap()[0];
    container.image = Some(stack.image.clone());
    let env = container.environment.as_mut().unwrap();
    env.iter_mut().find(|kv| kv.name() == Some("APP_ENV")).unwrap().value = Some("staging".into());
    env.push(KeyValuePair::builder().name("LOG_LEVEL").value("debug").build());
    assert_eq!(new, old, "the new revision must equal the old one but for image and environment");
    let tags = stack
        .ecs()
        .await
        .describe_task_definition()
        .task_definition(&new_arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    assert_eq!(
        tags,
        [("team", "platform"), ("ecs-deploy-action:version", env!("CARGO_PKG_VERSION"))],
        "the new revision keeps the old one's tags and says which action made it"
    );
}

/// Every revision and its service say who deployed it from which commit and run (tags), and the
/// next plan says it of the revision it replaces.
#[tokio::test]
async fn a_revision_says_who_deployed_it_and_the_next_plan_shows_it() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let github = [
        ("GITHUB_REPOSITORY", "octo/app"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_ACTOR", "octocat"),
    ];
    let mut action = stack.action();
    for (k, v) in github {
        action.env(k, v);
    }
    let run = action
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    let described = stack
        .ecs()
        .await
        .describe_task_definition()
        .task_definition("web:2")
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = described.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    for expected in [
        ("team", "platform"),
        ("ecs-deploy-action:commit", "0123456789abcdef0123456789abcdef01234567"),
        ("ecs-deploy-action:repository", "octo/app"),
        ("ecs-deploy-action:run", "https://github.com/octo/app/actions/runs/42"),
        ("ecs-deploy-action:actor", "octocat"),
    ] {
        assert!(tags.contains(&expected), "{expected:?} in {tags:?}");
    }
    // The service says it too, with the revision deployed.
    let service_arn = "arn:aws:ecs:us-east-1:123456789012:service/demo/web";
    let on_service = stack.ecs().await.list_tags_for_resource().resource_arn(service_arn).send().await.unwrap();
    let on_service: Vec<(&str, &str)> =
        on_service.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    for expected in [("ecs-deploy-action:actor", "octocat"), ("ecs-deploy-action:revision", "web:2")] {
        assert!(on_service.contains(&expected), "{expected:?} on the service: {on_service:?}");
    }
    let plan = deploy(&stack, &seeded, &["--dry-run"]);
    assert_eq!(plan.code, Some(0), "{plan}");
    assert!(
        plan.stdout
            .contains("web:2 was deployed by octocat from 0123456789ab (https://github.com/octo/app/actions/runs/42)"),
        "{plan}"
    );
}

#[tokio::test]
async fn a_release_that_never_gets_stable_is_rolled_back_with_its_tasks_reasons() {
    let stack = stack().await;
    // Without a circuit breaker ECS keeps replacing a crashing task: only wait-timeout ends the wait.
    let seeded = stack.seed(&["--circuit-breaker", "off"]);
    let run = deploy(&stack, &seeded, &["--wait-timeout", "4s", "--environment-variables", "CRASH_ON_START=3"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back");
    assert!(run.stdout.contains("the deployment did not become stable within wait-timeout 4s"), "{run}");
    assert!(run.stdout.contains("stopped: Essential container in task exited (web: exit code 3)"), "{run}");
    assert!(run.stdout.contains("is unable to consistently start tasks successfully"), "{run}");
    assert!(run.stdout.contains("demo/web is back on web:1"), "{run}");
    let last = run.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert_eq!(last, "demo/web is back on web:1, with all traffic.", "a failed run ends with where it stands:\n{run}");
    assert_eq!(service_revision(&stack).await, s(&seeded, "task_definition_arn"));
}

#[tokio::test]
async fn without_rollback_a_failed_deploy_stays_and_is_failed() {
    let stack = stack().await;
    let seeded = stack.seed(&["--circuit-breaker", "off"]);
    let run = deploy(
        &stack,
        &seeded,
        &["--wait-timeout", "2s", "--rollback", "false", "--environment-variables", "CRASH_ON_START=3"],
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "failed");
    assert!(run.stdout.contains("rollback is off: the service is left as it is"), "{run}");
    assert_eq!(service_revision(&stack).await, output(&run, "task-definition-arn"));
}

#[tokio::test]
async fn a_circuit_breaker_failure_waits_for_ecs_own_rollback() {
    let stack = stack().await;
    let seeded = stack.seed(&[]);
    let run = deploy(&stack, &seeded, &["--environment-variables", "CRASH_ON_START=1"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back");
    assert!(run.stdout.contains("ECS deployment circuit breaker: tasks failed to start."), "{run}");
    assert!(run.stdout.contains("stopped: Essential container in task exited (web: exit code 1)"), "{run}");
    assert!(run.stdout.contains("ECS already took demo/web back"), "{run}");
    assert_eq!(service_revision(&stack).await, s(&seeded, "task_definition_arn"));
}

/// Issue 24.1: after UpdateService the service cannot be read (an outage): the wait ends blind, and
/// the undo still sends the previous revision back rather than leaving ECS rolling the new one out
/// under a failed run.
#[tokio::test]
async fn a_rolling_deploy_whose_wait_cannot_read_the_service_is_still_rolled_back() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "2"]);
    // Every look of the wait fails (four in a row end it); the reads after that work again.
    stack.unavailable_after("ecs", "UpdateService", "DescribeServices", 4).await;
    let run = deploy(&stack, &seeded, &["--environment-variables", "APP_VERSION=unread"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back", "{run}");
    assert!(run.stdout.contains("the deployment of web:2 could not be followed: 4 look(s) in a row failed"), "{run}");
    assert!(run.stdout.contains("restoring demo/web to web:1"), "{run}");
    assert!(run.stdout.contains("demo/web is back on web:1"), "{run}");
    assert_eq!(service_revision(&stack).await, s(&seeded, "task_definition_arn"));
}

/// Issue 24.1: when the undo's own call is refused too (retried first), the run says where the
/// service is and prints the command that restores it.
#[tokio::test]
async fn an_undo_that_cannot_be_sent_says_where_the_service_is_and_how_to_restore_it() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "2"]);
    stack.unavailable_after("ecs", "UpdateService", "DescribeServices", 4).await;
    stack.throttle_after("ecs", "UpdateService", "UpdateService", None).await;
    let run = deploy(&stack, &seeded, &["--environment-variables", "APP_VERSION=stuck", "--desired-count", "3"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "failed", "{run}");
    let previous = s(&seeded, "task_definition_arn");
    assert!(run.stdout.contains("demo/web could not be sent back to web:1"), "{run}");
    assert!(run.stdout.contains("attempt(s) in"), "the call was retried: {run}");
    assert!(run.stdout.contains("its primary deployment runs web:2"), "{run}");
    let command = format!(
        "Restore it with: aws ecs update-service --cluster demo --service web --task-definition {previous} --desired-count 2"
    );
    assert!(run.stdout.contains(&command), "{run}");
    assert_eq!(service_revision(&stack).await, output(&run, "task-definition-arn"), "nothing else was changed");
}

/// Issue 30.1: reads throttled past the SDK's retries (here: one attempt each) slow the wait down;
/// they do not end it blind and roll a healthy release back.
#[tokio::test]
async fn a_wait_whose_reads_are_throttled_slows_down_and_still_succeeds() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "2"]);
    stack.throttle_after("ecs", "UpdateService", "DescribeServices", Some(6)).await;
    let run = deploy(&stack, &seeded, &["--environment-variables", "APP_VERSION=throttled"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(output(&run, "status"), "succeeded", "{run}");
    assert_eq!(service_revision(&stack).await, output(&run, "task-definition-arn"));
}

#[tokio::test]
async fn a_rolling_deploy_succeeds_with_a_fifth_of_its_ecs_calls_throttled() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "2"]);
    stack.throttle("ecs", None, 0.2).await;
    // The SDK's own retries, as a user runs it (the other tests allow one attempt to fail fast).
    let mut action = stack.action();
    action.env("AWS_MAX_ATTEMPTS", "3");
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut run = action
        .env("GITHUB_OUTPUT", &outputs)
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
        .args(["--environment-variables", "APP_VERSION=throttled"])
        .run();
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    stack.throttle("ecs", None, 0.0).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(output(&run, "status"), "succeeded");
    assert_eq!(service_revision(&stack).await, output(&run, "task-definition-arn"));
    assert_ne!(output(&run, "task-definition-arn"), s(&seeded, "task_definition_arn"));
}

#[tokio::test]
async fn several_containers_without_a_name_register_nothing() {
    let stack = stack().await;
    let seeded = stack.seed(&["--containers", "web,envoy"]);
    let run = deploy(&stack, &seeded, &[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("has 2 containers (`web`, `envoy`): set `container-name`"), "{run}");
    let families = stack.ecs().await.list_task_definitions().send().await.unwrap();
    assert_eq!(families.task_definition_arns().len(), 1, "nothing may be registered");
}

#[tokio::test]
async fn a_task_definition_file_is_rendered_instead_of_the_current_revision() {
    let stack = stack().await;
    let seeded = stack.seed(&[]);
    let (_dir, file) = taskdef_file(
        r#"{"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024",
            "containerDefinitions": [{"name": "web", "image": "placeholder", "essential": true, "memory": 1024,
              "environment": [{"name": "FROM_FILE", "value": "yes"}]}]}"#,
    );
    let run = deploy(&stack, &seeded, &["--task-definition", &file]);
    assert_eq!(run.code, Some(0), "{run}");
    let new = task_definition(&stack, &output(&run, "task-definition-arn")).await;
    assert_eq!(new.memory(), Some("1024"));
    let container = &new.container_definitions()[0];
    assert_eq!(container.image(), Some(stack.image.as_str()));
    assert_eq!(container.environment()[0].name(), Some("FROM_FILE"));
    assert_eq!(output(&run, "previous-task-definition-arn"), s(&seeded, "task_definition_arn"));
}

#[tokio::test]
async fn a_task_definition_with_every_registrable_field_comes_back_as_written() {
    let stack = stack().await;
    let seeded = stack.seed(&[]);
    let (_dir, file) = taskdef_file(
        r#"{"family": "web",
            "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
            "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            "networkMode": "awsvpc",
            "containerDefinitions": [{"name": "web", "image": "placeholder", "essential": true, "memory": 256,
              "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
              "environment": [{"name": "APP_ENV", "value": "demo"}]}],
            "volumes": [{"name": "scratch"}],
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "pidMode": "task",
            "ipcMode": "none",
            "proxyConfiguration": {"type": "APPMESH", "containerName": "web",
              "properties": [{"name": "AppPorts", "value": "8080"}]},
            "ephemeralStorage": {"sizeInGiB": 30},
            "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
            "enableFaultInjection": true}"#,
    );
    let run = deploy(&stack, &seeded, &["--task-definition", &file]);
    assert_eq!(run.code, Some(0), "{run}");
    let new = task_definition(&stack, &output(&run, "task-definition-arn")).await;
    assert_eq!(new.task_role_arn(), Some("arn:aws:iam::123456789012:role/web-task"));
    assert_eq!(new.execution_role_arn(), Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole"));
    assert_eq!(new.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    assert_eq!(new.volumes().iter().map(|v| v.name()).collect::<Vec<_>>(), [Some("scratch")]);
    assert_eq!(new.placement_constraints().len(), 1);
    assert_eq!((new.cpu(), new.memory()), (Some("256"), Some("512")));
    assert_eq!(new.pid_mode().map(|m| m.as_str()), Some("task"));
    assert_eq!(new.ipc_mode().map(|m| m.as_str()), Some("none"));
    assert_eq!(new.proxy_configuration().map(|p| p.container_name()), Some("web"));
    assert_eq!(new.ephemeral_storage().map(|e| e.size_in_gib()), Some(30));
    assert_eq!(new.runtime_platform().and_then(|p| p.cpu_architecture()).map(|a| a.as_str()), Some("X86_64"));
    // enableFaultInjection is sent too (ecs::rollout's field test lists it), but moto 5.2.1 does not
    // store it, so it cannot be read back here.
    assert_eq!(new.container_definitions()[0].image(), Some(stack.image.as_str()));
}

#[tokio::test]
async fn retired_elastic_inference_in_a_task_definition_is_refused_not_dropped() {
    let stack = stack().await;
    let seeded = stack.seed(&[]);
    let (_dir, file) = taskdef_file(
        r#"{"family": "web", "inferenceAccelerators": [{"deviceName": "device_1", "deviceType": "eia2.medium"}],
            "containerDefinitions": [{"name": "web", "image": "placeholder", "essential": true, "memory": 256}]}"#,
    );
    let run = deploy(&stack, &seeded, &["--task-definition", &file]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("remove `inferenceAccelerators` from the task definition"), "{run}");
    let families = stack.ecs().await.list_task_definitions().send().await.unwrap();
    assert_eq!(families.task_definition_arns().len(), 1, "nothing may be registered");
    assert_eq!(service_revision(&stack).await, s(&seeded, "task_definition_arn"));
}

#[tokio::test]
async fn an_image_given_by_tag_is_deployed_by_its_digest_and_a_missing_tag_changes_nothing() {
    let stack = stack().await;
    stack.seed(&[]);
    let tag = crate::support::unique("pin");
    let pushed = stack
        .action()
        .args(["--aws-region", &stack.region, "--ecr-repository", "demo-app", "--registry", &stack.registry])
        .args(["--tags", &tag, "--context", crate::support::repo_root().join("demo-app").to_str().unwrap()])
        .run();
    assert_eq!(pushed.code, Some(0), "{pushed}");

    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let by_tag = format!("{}/demo-app:{tag}", stack.registry);
    let mut run = stack
        .action()
        .env("GITHUB_OUTPUT", &outputs)
        .args(["--aws-region", &stack.region, "--image", &by_tag, "--cluster", "demo", "--service", "web"])
        // The local registry stands in for ECR: named, it gets ECR's token (any other host would not).
        .args(["--registry", &stack.registry])
        .run();
    run.outputs = std::fs::read_to_string(&outputs).unwrap_or_default();
    assert_eq!(run.code, Some(0), "{run}");
    let digest = output(&run, "image-digest");
    assert!(digest.starts_with("sha256:"), "{run}");
    let new = task_definition(&stack, &output(&run, "task-definition-arn")).await;
    assert_eq!(new.container_definitions()[0].image(), Some(format!("{}/demo-app@{digest}", stack.registry).as_str()));

    let before = service_revision(&stack).await;
    let missing = format!("{}/demo-app:no-such-tag", stack.registry);
    let run = stack
        .action()
        .args(["--aws-region", &stack.region, "--image", &missing, "--cluster", "demo", "--service", "web"])
        .args(["--registry", &stack.registry])
        .run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("does not exist in the registry"), "{run}");
    assert_eq!(service_revision(&stack).await, before);
}

#[tokio::test]
async fn sigint_during_the_rolling_wait_restores_the_previous_revision_in_one_call() {
    let stack = stack().await;
    // A release that never gets stable, and no circuit breaker: only the user can end the wait.
    let seeded = stack.seed(&["--circuit-breaker", "off"]);
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut child = stack
        .action()
        .env("GITHUB_OUTPUT", &outputs)
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
        .args(["--wait-timeout", "5m", "--environment-variables", "CRASH_ON_START=1"])
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while service_revision(&stack).await == s(&seeded, "task_definition_arn") {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it updated the service");
        assert!(std::time::Instant::now() < deadline, "the service was never updated");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let signalled = std::time::Instant::now();
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let mut run = Run::from(child.wait_with_output().unwrap());
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    assert!(signalled.elapsed() < std::time::Duration::from_secs(10), "GitHub kills the job 10 s after its SIGINT");
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back");
    assert!(
        run.stdout.contains("cancelled (SIGINT/SIGTERM); demo/web is being restored to web:1 (not waited for"),
        "{run}"
    );
    assert!(
        run.stdout.contains("demo/web was sent back to its previous revision; ECS finishes the rollback"),
        "not `is back on`: the rollback was not waited for\n{run}"
    );
    assert_eq!(service_revision(&stack).await, s(&seeded, "task_definition_arn"), "the restore call was made");
}

/// `desired-count` changes the count with the revision, and an undo puts both back.
#[tokio::test]
async fn desired_count_is_set_with_the_revision_and_restored_with_the_previous_one() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "2"]);
    let run = deploy(&stack, &seeded, &["--desired-count", "3"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("(2 desired, to become 3)"), "the plan says so:\n{run}");
    let ecs = stack.ecs().await;
    let web = ecs.describe_services().cluster("demo").services("web").send().await.unwrap().services()[0].clone();
    assert_eq!((web.desired_count(), web.running_count()), (3, 3), "{run}");
    let promoted = web.task_definition().unwrap().to_string();

    let run = deploy(
        &stack,
        &seeded,
        &["--desired-count", "5", "--environment-variables", "CRASH_ON_START=1", "--wait-timeout", "20s"],
    );
    assert_eq!(run.code, Some(1), "{run}");
    let web = ecs.describe_services().cluster("demo").services("web").send().await.unwrap().services()[0].clone();
    assert_eq!(web.task_definition(), Some(promoted.as_str()), "the previous revision is back");
    assert_eq!(web.desired_count(), 3, "and the previous count with it:\n{run}");
}

/// "It failed, why?": a release that exits 3 at start is rolled back, and the log and the summary
/// show its stopped tasks with the exit code and the last lines the container logged.
#[tokio::test]
async fn a_failed_release_is_explained_with_its_exit_code_and_last_log_lines() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let run = Run::from(
        stack
            .action()
            .env("GITHUB_STEP_SUMMARY", &summary)
            .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", s(&seeded, "cluster")])
            .args(["--service", "web", "--environment-variables", "CRASH_ON_START=3", "--wait-timeout", "30s"])
            .spawn()
            .wait_with_output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("Why the new revision's tasks stopped"), "{run}");
    assert!(run.stdout.contains("  web: exit code 3"), "{run}");
    assert!(
        run.stdout.contains("demo-app: fatal: CRASH_ON_START=3, exiting with code 3"),
        "the container's own words:\n{run}"
    );
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("<details open><summary>Why the new revision's tasks stopped</summary>"), "{summary}");
    assert!(summary.contains("- ` web `: ` exit code 3 `"), "{summary}");
    assert!(summary.contains("```text\n"), "{summary}");
    assert!(
        summary.contains("demo-app: fatal: CRASH_ON_START=3, exiting with code 3\n```"),
        "the last line logged:\n{summary}"
    );
}

/// A release that needs more memory than its container may use (the seeded container's `memory`
/// is 256 MiB; the demo app's `ALLOCATE_MB` holds 512): the kernel kills it, and the log and the
/// summary name OutOfMemoryError.
#[tokio::test]
async fn a_release_the_kernel_kills_for_memory_is_named_out_of_memory() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let run = stack
        .action()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", s(&seeded, "cluster")])
        .args(["--service", "web", "--environment-variables", "ALLOCATE_MB=512", "--wait-timeout", "30s"])
        .run();
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(service_revision(&stack).await, s(&seeded, "task_definition_arn"), "rolled back");
    assert!(
        run.stdout.contains("  web: OutOfMemoryError, exit code 137: Container killed due to memory usage"),
        "{run}"
    );
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("- ` web `: ` OutOfMemoryError, exit code 137: "), "{summary}");
}

/// A known revision: `task-definition: web:1` with no image goes back to it as it is (nothing
/// registered); with `image`, it is the base the new revision is rendered from.
#[tokio::test]
async fn a_known_revision_is_deployed_as_it_is_or_rendered_from() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let first = s(&seeded, "task_definition_arn").to_string();
    let run = deploy(&stack, &seeded, &["--environment-variables", "APP_VERSION=2"]);
    assert_eq!(run.code, Some(0), "{run}");
    let ecs = stack.ecs().await;
    let count = || async {
        let out = ecs.list_task_definitions().family_prefix("web").send().await.unwrap();
        out.task_definition_arns().len()
    };
    assert_eq!(count().await, 2);

    let back = Run::from(
        stack
            .action()
            .args([
                "--aws-region",
                &stack.region,
                "--cluster",
                "demo",
                "--service",
                "web",
                "--task-definition",
                "web:1",
            ])
            .spawn()
            .wait_with_output()
            .unwrap(),
    );
    assert_eq!(back.code, Some(0), "{back}");
    assert!(back.stdout.contains("revision: web:1 as it is (nothing registered)"), "the plan says so:\n{back}");
    assert!(back.stdout.contains("deploying web:1 as it is: nothing registered"), "{back}");
    assert_eq!(service_revision(&stack).await, first, "the service is back on web:1");
    assert_eq!(count().await, 2, "nothing registered");

    let rendered = deploy(&stack, &seeded, &["--task-definition", &first]);
    assert_eq!(rendered.code, Some(0), "{rendered}");
    let new = task_definition(&stack, &output(&rendered, "task-definition-arn")).await;
    assert_eq!(count().await, 3, "with an image, a new revision from the known one");
    let env = new.container_definitions()[0].environment();
    assert!(!env.iter().any(|kv| kv.name() == Some("APP_VERSION")), "rendered from web:1, not from the latest");
}

/// Issue 24.5: anyone with ecs:StopTask writes a stopped reason, and the rolling wait prints it. A
/// workflow command behind a bare carriage return, after CRLF, or in the legacy `##[` form mid-line
/// stays inert in the log the runner reads.
#[tokio::test]
async fn a_stopped_reason_with_workflow_commands_stays_inert_in_the_log() {
    let stack = stack().await;
    // A release that never gets stable and no circuit breaker: the wait lasts until wait-timeout.
    let seeded = stack.seed(&["--circuit-breaker", "off", "--desired", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let mut child = stack
        .action()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", dir.path().join("outputs"))
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
        .args(["--wait-timeout", "8s", "--environment-variables", "CRASH_ON_START=1"])
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while service_revision(&stack).await == s(&seeded, "task_definition_arn") {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it updated the service");
        assert!(std::time::Instant::now() < deadline, "the service was never updated");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ecs = stack.ecs().await;
    let running = ecs.list_tasks().cluster("demo").service_name("web").send().await.unwrap();
    let task = running.task_arns().first().expect("a running task of the old revision").clone();
    // No newline in it: a line break would have the whole text printed between stop-commands.
    let hostile =
        "scaled in\r::warning::pwned-cr and ##[warning]pwned-legacy\r::add-mask::ecs\r::stop-commands::pwned-stop";
    ecs.stop_task().cluster("demo").task(&task).reason(hostile).send().await.unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("pwned-cr"), "the stopped reason was printed (the test saw it): {run}");
    let live = live_commands(&run.stdout);
    let injected: Vec<&&str> = live.iter().filter(|l| l.contains("pwned") || l.contains("add-mask::ecs")).collect();
    assert!(injected.is_empty(), "commands the runner would run: {injected:?}\n{run}");
}

/// A revision of `web` that never starts (CRASH_ON_START), deployed by someone else: with the
/// circuit breaker off its deployment stays in progress.
async fn deploy_elsewhere(stack: &Stack, base: &str) -> String {
    let ecs = stack.ecs().await;
    let mut td = task_definition(stack, base).await;
    let container = &mut td.container_definitions.as_mut().unwrap()[0];
    container
        .environment
        .get_or_insert_with(Vec::new)
        .push(KeyValuePair::builder().name("CRASH_ON_START").value("1").build());
    let registered = ecs
        .register_task_definition()
        .family(td.family().unwrap())
        .set_container_definitions(td.container_definitions.clone())
        .set_requires_compatibilities(td.requires_compatibilities.clone())
        .set_network_mode(td.network_mode.clone())
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .send()
        .await
        .unwrap();
    let arn = registered.task_definition().unwrap().task_definition_arn().unwrap().to_string();
    ecs.update_service().cluster("demo").service("web").task_definition(&arn).send().await.unwrap();
    arn
}

/// Issue 24.3: a run that starts while another deployment is in flight would take that revision,
/// which may never work, as the one to go back to. It is refused before any change, naming the
/// deployment; `wait-for-deployment` waits for it, at most wait-timeout.
#[tokio::test]
async fn a_deployment_already_in_progress_is_refused_or_waited_for() {
    let stack = stack().await;
    let seeded = stack.seed(&["--circuit-breaker", "off"]);
    let in_flight = deploy_elsewhere(&stack, s(&seeded, "task_definition_arn")).await;
    // What a deploy would change (the crash-looping tasks change the rest of the state by themselves).
    let deployable = async || {
        let state = stack.state().await;
        let service = &state["ecs"]["Service"][0];
        (state["ecs"]["TaskDefinition"].clone(), service["task_definition"].clone(), service["tags"].clone())
    };
    let before = deployable().await;
    let run = deploy(&stack, &seeded, &["--environment-variables", "APP_VERSION=2"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("`web` has a deployment in progress: deployment ecs-svc/"), "{run}");
    assert!(run.stdout.contains("of web:2 (IN_PROGRESS since "), "names the revision and since when: {run}");
    assert!(run.stdout.contains("set `wait-for-deployment: true`"), "names the input: {run}");
    assert!(deployable().await == before, "nothing was changed: no revision registered, no update, no lease");

    let run = deploy(
        &stack,
        &seeded,
        &["--environment-variables", "APP_VERSION=2", "--wait-for-deployment", "--wait-timeout", "3s"],
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("waiting for it to end (wait-for-deployment)"), "{run}");
    assert!(run.stdout.contains("`web` still has a deployment in progress after wait-timeout 3s"), "{run}");
    assert_eq!(service_revision(&stack).await, in_flight, "nothing was changed");
}

/// `wait-for-deployment`: a deployment that ends is waited for, and the run plans against what the
/// service then runs.
#[tokio::test]
async fn with_wait_for_deployment_a_deployment_in_progress_is_waited_for() {
    let stack = stack().await;
    let seeded = stack.seed(&[]);
    let ecs = stack.ecs().await;
    ecs.update_service().cluster("demo").service("web").force_new_deployment(true).send().await.unwrap();
    let run = deploy(&stack, &seeded, &["--environment-variables", "APP_VERSION=2", "--wait-for-deployment"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(output(&run, "previous-task-definition-arn"), s(&seeded, "task_definition_arn"));
    assert_eq!(service_revision(&stack).await, output(&run, "task-definition-arn"));
}

/// Issue 24.7: a container that prints its configuration as it crashes must not publish its secrets
/// in the pull-request comment or the summary (the runner masks the log only): values of
/// secret-looking names, of the revision and of `environment-variables`, and URL passwords are
/// redacted everywhere, and masked in the log from the start.
#[tokio::test]
async fn secrets_a_crashing_container_prints_reach_no_sink() {
    let stack = stack().await;
    let seeded = stack.seed(&[
        "--desired",
        "1",
        "--env",
        "DB_PASSWORD=hunter2-s3cret-value",
        "--env",
        "DATABASE_URL=postgres://app:pa55word-xyz@db:5432/app",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (summary, outputs) = (dir.path().join("summary.md"), dir.path().join("outputs"));
    let run = Run::from(
        stack
            .action()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", s(&seeded, "cluster")])
            .args(["--service", "web", "--wait-timeout", "30s", "--environment-variables"])
            .args(["API_TOKEN=tok-0123456789\nCRASH_ON_START=3\nPRINT_ENV_ON_CRASH=1"])
            .spawn()
            .wait_with_output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{run}");
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("demo-app: config DB_PASSWORD=***"), "the tail was shown, redacted: {summary}");
    assert!(summary.contains("demo-app: config DATABASE_URL=postgres://app:***@db:5432/app"), "{summary}");
    assert!(summary.contains("demo-app: config API_TOKEN=***"), "{summary}");
    assert!(summary.contains("demo-app: config APP_ENV=demo"), "plain values stay: {summary}");
    let outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    for secret in ["hunter2-s3cret-value", "pa55word-xyz", "tok-0123456789"] {
        assert!(!summary.contains(secret), "{secret} in the summary: {summary}");
        assert!(!outputs.contains(secret), "{secret} in the outputs: {outputs}");
        let leaked: Vec<&str> =
            run.stdout.lines().filter(|l| l.contains(secret) && !l.starts_with("::add-mask::")).collect();
        assert!(leaked.is_empty(), "{secret} in the log: {leaked:?}");
        assert!(run.stdout.contains(&format!("::add-mask::{secret}")), "masked for the runner too: {run}");
    }
}

#[tokio::test]
async fn by_default_a_run_tells_its_story_and_keeps_timings_and_call_counts_for_debugging() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    let args = ["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"];
    let local = stack.action().quiet().args(args).run();
    assert_eq!(local.code, Some(0), "{local}");
    assert!(!local.stdout.contains("AWS calls: ") && !local.stdout.contains("sleeping between polls"), "{local}");
    // In Actions they are debug lines: the runner shows them when the job is re-run with debug logging.
    stack.seed(&["--desired", "1"]);
    let actions = stack.action().quiet().env("GITHUB_ACTIONS", "true").args(args).run();
    assert_eq!(actions.code, Some(0), "{actions}");
    assert!(actions.stdout.lines().any(|l| l.starts_with("::debug::AWS calls: ECS ")), "{actions}");
    assert!(actions.stdout.lines().any(|l| l.starts_with("::debug::took ")), "{actions}");
    assert!(!actions.stdout.lines().any(|l| l.starts_with("AWS calls: ")), "{actions}");
    let last = actions.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.starts_with("::notice title=Deployed::demo/web → web:") && last.contains(", rolling, "), "{actions}");
}

/// Issue 30.5: a revision and a task count changed outside the action since it last deployed (here
/// with the SDK, as the console or Terraform would) are shown in the plan as drift; `drift: refuse`
/// stops the run before any change, `warn` (the default) says so and deploys over it.
#[tokio::test]
async fn a_change_made_outside_the_action_is_shown_as_drift_and_refused_on_request() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let first = deploy(&stack, &seeded, &["--environment-variables", "APP_VERSION=2"]);
    assert_eq!(first.code, Some(0), "{first}");
    let ecs = stack.ecs().await;
    let seeded_revision = s(&seeded, "task_definition_arn");
    ecs.update_service()
        .cluster("demo")
        .service("web")
        .task_definition(seeded_revision)
        .desired_count(2)
        .send()
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while {
        let now = ecs.describe_services().cluster("demo").services("web").send().await.unwrap();
        let svc = &now.services()[0];
        svc.deployments().len() > 1 || svc.running_count() != 2
    } {
        assert!(start.elapsed() < Duration::from_secs(30), "the console's change did not settle");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let planned = deploy(&stack, &seeded, &["--dry-run"]);
    assert_eq!(planned.code, Some(0), "{planned}");
    for line in [
        "drift:    `web` runs web:1; the action last deployed web:2 (changed outside the action)",
        "drift:    `web` wants 2 tasks; the action left 1 (changed outside the action)",
        "warning: drift: `web` runs web:1; the action last deployed web:2 (changed outside the action since its last deploy)",
    ] {
        assert!(planned.stdout.contains(line), "{line}:\n{planned}");
    }

    let before = stack.state().await["ecs"]["Service"][0]["task_definition"].clone();
    let refused = deploy(&stack, &seeded, &["--drift", "refuse", "--environment-variables", "APP_VERSION=3"]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stdout.contains("changed outside the action since its last deploy"), "{refused}");
    assert!(refused.stdout.contains("deploy over it with `drift: warn`"), "{refused}");
    assert_eq!(stack.state().await["ecs"]["Service"][0]["task_definition"], before, "nothing was changed");

    let over = deploy(&stack, &seeded, &["--environment-variables", "APP_VERSION=3"]);
    assert_eq!(over.code, Some(0), "{over}");
    let again = deploy(&stack, &seeded, &["--dry-run"]);
    assert!(!again.stdout.contains("drift:"), "the action's own deploy is no drift:\n{again}");
}
