//! One deploy at a time per service: two runs started together on one service (one deploys, the
//! other is refused naming the holder, nothing mixed), a lease held by a live run refuses, an expired
//! one is taken over with a warning, and the lease is gone once a run ends.

use std::process::Child;

use crate::support::{Run, Stack, stack};

const KEY: &str = "ecs-deploy-action:lease";

fn start(stack: &Stack, run_id: &str, extra: &[&str]) -> Child {
    start_with(stack, run_id, extra, &[])
}

/// `start` with `env` set too.
fn start_with(stack: &Stack, run_id: &str, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let mut action = stack.action();
    for (key, value) in env {
        action.env(key, value);
    }
    action
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "octo/app")
        .env("GITHUB_RUN_ID", run_id)
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
        .args(extra);
    action.spawn()
}

async fn service_arn(stack: &Stack) -> String {
    let out = stack.ecs().await.describe_services().cluster("demo").services("web").send().await.unwrap();
    out.services()[0].service_arn().unwrap().to_string()
}

async fn lease_tag(stack: &Stack) -> Option<String> {
    let arn = service_arn(stack).await;
    let out = stack.ecs().await.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    out.tags().iter().find(|t| t.key() == Some(KEY)).and_then(|t| t.value()).map(str::to_string)
}

async fn set_lease(stack: &Stack, value: &str) {
    let tag = aws_sdk_ecs::types::Tag::builder().key(KEY).value(value).build();
    stack.ecs().await.tag_resource().resource_arn(service_arn(stack).await).tags(tag).send().await.unwrap();
}

async fn revisions(stack: &Stack) -> usize {
    stack.ecs().await.list_task_definitions().family_prefix("web").send().await.unwrap().task_definition_arns().len()
}

async fn stable_revision(stack: &Stack) -> String {
    let out = stack.ecs().await.describe_services().cluster("demo").services("web").send().await.unwrap();
    out.services()[0].task_definition().unwrap().to_string()
}

#[tokio::test]
async fn two_runs_started_together_exactly_one_deploys_and_the_other_is_refused_naming_it() {
    let stack = stack().await;
    stack.seed(&["--desired", "2"]);
    let before = revisions(&stack).await;
    let (a, b) = (start(&stack, "1001", &[]), start(&stack, "1002", &[]));
    let runs = [Run::from(a.wait_with_output().unwrap()), Run::from(b.wait_with_output().unwrap())];
    let codes: Vec<Option<i32>> = runs.iter().map(|r| r.code).collect();
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "exactly one deploys: {}\n{}", runs[0], runs[1]);
    let (winner, loser) = if runs[0].code == Some(0) { ("1001", &runs[1]) } else { ("1002", &runs[0]) };
    assert!(
        loser.stdout.contains(&format!(
            "`web` is being deployed by https://github.com/octo/app/actions/runs/{winner} (its lease runs until "
        )),
        "the refusal names the holder:\n{loser}"
    );
    assert!(loser.stdout.contains("Deploy refused"), "{loser}");
    assert_eq!(revisions(&stack).await, before + 1, "only the winner registered a revision: nothing mixed");
    assert!(stable_revision(&stack).await.ends_with(&format!("web:{}", before + 1)));
    assert_eq!(lease_tag(&stack).await, None, "the winner released its lease at the end");
}

#[tokio::test]
async fn a_lease_held_by_a_live_run_refuses_and_changes_nothing() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    let held = "until 2099-01-01T00:00:00Z by https://github.com/octo/app/actions/runs/7 lease 0123456789abcdef";
    set_lease(&stack, held).await;
    let (before, stable) = (revisions(&stack).await, stable_revision(&stack).await);
    let run = Run::from(start(&stack, "8", &[]).wait_with_output().unwrap());
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains(
            "`web` is being deployed by https://github.com/octo/app/actions/runs/7 (its lease runs until \
             2099-01-01T00:00:00Z): wait for that run to end. If it is gone, remove the lease and run again: \
             aws ecs untag-resource --resource-arn arn:aws:ecs:"
        ),
        "{run}"
    );
    assert_eq!((revisions(&stack).await, stable_revision(&stack).await), (before, stable), "nothing changed");
    assert_eq!(lease_tag(&stack).await.as_deref(), Some(held), "another run's lease is never removed");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_a_warning_and_released_at_the_end() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    set_lease(
        &stack,
        "until 2020-01-01T00:00:00Z by https://github.com/octo/app/actions/runs/3 lease 00000000000000aa",
    )
    .await;
    let run = Run::from(start(&stack, "9", &[]).wait_with_output().unwrap());
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains(
            "warning: taking over the lease on `web` of https://github.com/octo/app/actions/runs/3, which expired \
             at 2020-01-01T00:00:00Z: that run ended without releasing it"
        ),
        "{run}"
    );
    assert!(run.stdout.contains("took the deploy lease on `web` until "), "{run}");
    assert_eq!(lease_tag(&stack).await, None);
}

#[tokio::test]
async fn a_failed_deploy_releases_its_lease_too() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    let run = Run::from(
        start(&stack, "10", &["--environment-variables", "CRASH_ON_START=1", "--wait-timeout", "20s"])
            .wait_with_output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(lease_tag(&stack).await, None, "{run}");
}

/// Waits until the run's lease tag is on the service, then returns it.
async fn lease_taken(stack: &Stack, child: &mut Child) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it took its lease");
        assert!(std::time::Instant::now() < deadline, "the run never took its lease");
        if let Some(tag) = lease_tag(stack).await {
            return tag;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Issue 24.4: a lease shorter than the run (here 2 s, while the pre-deploy task takes 5) is renewed
/// while the run lives: a second run started meanwhile is refused, and the first deploys.
#[tokio::test]
async fn the_lease_is_renewed_while_the_run_lives() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    let mut first = start_with(
        &stack,
        "21",
        &["--pre-deploy-command", "migrate --sleep 5"],
        &[("ECS_DEPLOY_TEST_LEASE_HOLD", "2s")],
    );
    let taken = lease_taken(&stack, &mut first).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let renewed = lease_tag(&stack).await.expect("the lease is still there");
    assert_ne!(renewed, taken, "written again with a later expiry");
    let second = Run::from(start(&stack, "22", &[]).wait_with_output().unwrap());
    assert_eq!(second.code, Some(1), "{second}");
    assert!(
        second.stdout.contains("`web` is being deployed by https://github.com/octo/app/actions/runs/21"),
        "{second}"
    );
    let first = Run::from(first.wait_with_output().unwrap());
    assert_eq!(first.code, Some(0), "{first}");
    assert!(!first.stderr.contains("could not renew") && !first.stdout.contains("could not renew"), "{first}");
    assert_eq!(lease_tag(&stack).await, None, "released at the end");
}

/// Issue 24.4: a run that lost its lease (another run took it while the pre-deploy task ran) changes
/// nothing more: the service keeps its revision, and the other run's lease stays.
#[tokio::test]
async fn a_run_that_lost_its_lease_changes_nothing_more() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    let before = stable_revision(&stack).await;
    let mut first = start(&stack, "31", &["--pre-deploy-command", "migrate --sleep 4"]);
    // Once its pre-deploy task runs, the run holds its lease (taken and read back) and waits.
    let ecs = stack.ecs().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ecs.list_tasks().cluster("demo").started_by("ecs-deploy-action").send().await.unwrap().task_arns().is_empty()
    {
        assert!(first.try_wait().unwrap().is_none(), "the run ended before its pre-deploy task started");
        assert!(std::time::Instant::now() < deadline, "no pre-deploy task started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let theirs = "until 2099-01-01T00:00:00Z by https://github.com/octo/app/actions/runs/32 lease 0123456789abcdef";
    set_lease(&stack, theirs).await;
    let run = Run::from(first.wait_with_output().unwrap());
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("this run lost the deploy lease on `web` to https://github.com/octo/app/actions/runs/32"),
        "{run}"
    );
    assert_eq!(stable_revision(&stack).await, before, "the service was not updated");
    assert_eq!(lease_tag(&stack).await.as_deref(), Some(theirs), "the other run's lease stays");
}
