//! Pull-request previews on the stack, through the real listener: a pull request opened gets its own
//! service answering at its host while the base service answers as before; a push updates the same
//! service; closing removes every part of it, leaving the base as it was (state read back and
//! compared); the cap refuses one preview too many with the list of open ones; two opened at once
//! both get a rule; `previews prune` removes the preview of a closed pull request and keeps an open
//! one's; a fork's pull request gets a message and nothing made.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::report::{bodies, comment, echo_comment, fixture, github};
use crate::support::{Run, Stack, differences, output, read_back, s, stack};

const TOKEN: &str = "ghs_PreviewTestToken0123456789abcdef";
const DOMAIN: &str = "preview.example.com";

/// The action as org/app's pull-request workflow runs it: `action` happened to pull request `number`
/// (from a fork when `fork`), previewing demo/web with APP_VERSION=`version`.
fn preview(stack: &Stack, server: Option<&MockServer>, listener: &str, pr: (&str, u64, bool), version: &str) -> Run {
    preview_with(stack.action(), stack, server, listener, pr, version)
}

/// `preview` with `action` (its environment set up by the caller).
fn preview_with(
    mut action: crate::support::Action,
    stack: &Stack,
    server: Option<&MockServer>,
    listener: &str,
    pr: (&str, u64, bool),
    version: &str,
) -> Run {
    let (event_action, number, fork) = pr;
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    let head = if fork { "someone/app" } else { "org/app" };
    let payload = json!({
        "action": event_action,
        "number": number,
        "pull_request": {
            "number": number,
            "head": { "sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "repo": { "full_name": head, "fork": fork } },
            "base": { "repo": { "full_name": "org/app", "fork": false } }
        }
    });
    std::fs::write(&event, payload.to_string()).unwrap();
    let outputs = dir.path().join("outputs");
    action
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "org/app")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_OUTPUT", &outputs)
        .input("aws-region", &stack.region)
        .input("image", &stack.image)
        .input("cluster", "demo")
        .input("service", "web")
        .input("preview", "true")
        .input("preview-domain", DOMAIN)
        .input("preview-limit", "2")
        .input("listener-arn", listener)
        .input("environment-variables", &format!("APP_VERSION={version}"));
    match server {
        Some(server) => action.env("GITHUB_API_URL", server.uri()).input("github-token", TOKEN),
        None => action.env_remove("GITHUB_TOKEN"),
    };
    let mut run = action.run();
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    run
}

/// The version that answers `host` through the listener at `url`.
async fn version(url: &str, host: &str) -> String {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let answer = client.get(format!("{url}/version")).header("host", host).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{host}");
    let body: Value = answer.json().await.unwrap();
    body["version"].as_str().unwrap().to_string()
}

/// `version` once the load balancer has taken a rule change in (ALB's take seconds too).
async fn settles_on(url: &str, host: &str, want: &str) {
    let start = std::time::Instant::now();
    loop {
        let got = version(url, host).await;
        if got == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{host} still answers {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_gets_a_preview_that_follows_its_pushes_and_goes_when_it_closes() {
    let stack = stack().await;
    let seeded = stack.seed(&["--alb", "--desired", "1", "--env", "APP_VERSION=base"]);
    let listener = s(&seeded, "listener_arn");
    let url = stack.listener_url(listener).await;
    let before = read_back(&stack, listener).await;

    let server = github().await;
    let marker = "<!-- ecs-deploy-action:demo/web-pr-7 -->";
    Mock::given(method("GET"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vec![comment(
            902,
            "github-actions[bot]",
            "Bot",
            marker,
        )]))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/org/app/issues/comments/902"))
        .respond_with(echo_comment(902))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/deployments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("deployment.json")))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/deployments/55/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1, "state": "success" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/org/app/deployments"))
        .and(query_param("environment", "preview/pr-7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vec![fixture("deployment.json")]))
        .expect(1)
        .mount(&server)
        .await;

    let opened = preview(&stack, Some(&server), listener, ("opened", 7, false), "pr-7-first");
    assert_eq!(opened.code, Some(0), "{opened}");
    for line in ["made target group web-pr-7", "made a listener rule at priority 1", "made service web-pr-7"] {
        assert!(opened.stdout.contains(line), "{line}:\n{opened}");
    }
    assert_eq!(output(&opened, "status"), "succeeded");
    assert!(!opened.stdout.contains("::warning"), "{opened}");
    let host = format!("pr-7.{DOMAIN}");
    assert_eq!(version(&url, &host).await, "pr-7-first", "the preview answers at its host");
    assert_eq!(version(&url, "app.example.com").await, "base", "the base service answers as before");

    let pushed = preview(&stack, Some(&server), listener, ("synchronize", 7, false), "pr-7-second");
    assert_eq!(pushed.code, Some(0), "{pushed}");
    assert!(!pushed.stdout.contains("made "), "a push makes nothing new:\n{pushed}");
    assert_eq!(version(&url, &host).await, "pr-7-second", "the same preview runs the new push");
    let ecs = stack.ecs().await;
    let svc = ecs.describe_services().cluster("demo").services("web-pr-7").send().await.unwrap();
    let revision = svc.services()[0].task_definition().unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(revision, "web-pr-7:2", "its own family, one revision a push");
    assert_eq!(version(&url, "app.example.com").await, "base");

    let deployments = bodies(&server, "POST", "/repos/org/app/deployments").await;
    assert!(deployments.iter().all(|d| d["environment"] == "preview/pr-7"), "{deployments:?}");
    let statuses = bodies(&server, "POST", "/repos/org/app/deployments/55/statuses").await;
    let success: Vec<&Value> = statuses.iter().filter(|s| s["state"] == "success").collect();
    assert_eq!(success.len(), 2, "{statuses:?}");
    assert!(success.iter().all(|s| s["environment_url"] == format!("http://{host}/")), "{statuses:?}");
    let edits = bodies(&server, "PATCH", "/repos/org/app/issues/comments/902").await;
    let last = edits.last().unwrap()["body"].as_str().unwrap().to_string();
    assert!(last.starts_with(marker) && last.contains(&format!("| Preview | http://{host}/ |")), "{last}");

    let closed = preview(&stack, Some(&server), listener, ("closed", 7, false), "");
    assert_eq!(closed.code, Some(0), "{closed}");
    assert_eq!(output(&closed, "status"), "removed");
    for part in
        ["removed listener rule", "removed service web-pr-7", "removed target group", "removed revision web-pr-7:1"]
    {
        assert!(closed.stdout.contains(part), "{part}:\n{closed}");
    }
    assert_eq!(
        differences(&before, &read_back(&stack, listener).await),
        "",
        "every part of the preview is gone, the base as it was"
    );
    settles_on(&url, &host, "base").await;
    let statuses = bodies(&server, "POST", "/repos/org/app/deployments/55/statuses").await;
    assert_eq!(statuses.last().unwrap()["state"], "inactive", "{statuses:?}");
    let edits = bodies(&server, "PATCH", "/repos/org/app/issues/comments/902").await;
    let last = edits.last().unwrap()["body"].as_str().unwrap().to_string();
    assert!(last.starts_with(marker) && last.contains("removed (the pull request closed)"), "{last}");
    let active = ecs
        .list_task_definitions()
        .family_prefix("web-pr-7")
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    assert!(active.task_definition_arns().is_empty(), "the preview's revisions are deregistered");
    server.verify().await;

    let again = preview(&stack, None, listener, ("closed", 7, false), "");
    assert_eq!(again.code, Some(0), "{again}");
    assert!(again.stdout.contains("nothing of its preview is left"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_opened_together_both_get_rules_the_cap_refuses_the_next_and_prune_removes_a_closed_ones() {
    let stack = stack().await;
    let seeded = stack.seed(&["--alb", "--desired", "1", "--env", "APP_VERSION=base"]);
    let listener = s(&seeded, "listener_arn").to_string();
    let url = stack.listener_url(&listener).await;
    let before = read_back(&stack, &listener).await;

    let fork = preview(&stack, None, &listener, ("opened", 9, true), "fork");
    assert_eq!(fork.code, Some(0), "{fork}");
    assert!(fork.stdout.contains("no preview for #9: it comes from a fork"), "{fork}");
    assert_eq!(output(&fork, "status"), "skipped");
    assert_eq!(differences(&before, &read_back(&stack, &listener).await), "", "nothing made for a fork");

    let mut action = stack.action();
    action.input("dry-run", "true");
    let planned = preview_with(action, &stack, None, &listener, ("opened", 1, false), "pr-1");
    assert_eq!(planned.code, Some(0), "{planned}");
    for line in [
        "strategy: preview of web for pull request #1, at http://pr-1.preview.example.com/",
        "make:   target group web-pr-1",
        "make:   service web-pr-1 like web",
    ] {
        assert!(planned.stdout.contains(line), "{line}:\n{planned}");
    }
    assert!(output(&planned, "plan").contains(r#""preview_url":"http://pr-1.preview.example.com/""#), "{planned}");
    assert_eq!(differences(&before, &read_back(&stack, &listener).await), "", "a dry run changes nothing");

    // Two pull requests opened at the same moment race for the lowest free rule priority.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| preview(&stack, None, &listener, ("opened", 1, false), "pr-1"));
        let b = scope.spawn(|| preview(&stack, None, &listener, ("opened", 2, false), "pr-2"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a.code, b.code), (Some(0), Some(0)), "{a}\n{b}");
    assert_eq!(version(&url, &format!("pr-1.{DOMAIN}")).await, "pr-1");
    assert_eq!(version(&url, &format!("pr-2.{DOMAIN}")).await, "pr-2");
    assert_eq!(version(&url, "app.example.com").await, "base");

    let full = read_back(&stack, &listener).await;
    let third = preview(&stack, None, &listener, ("opened", 3, false), "pr-3");
    assert_eq!(third.code, Some(1), "{third}");
    assert!(
        third.stdout.contains("`web` has 2 open previews, its limit (`preview-limit` 2): web-pr-1 (#1), web-pr-2 (#2)"),
        "{third}"
    );
    assert_eq!(differences(&full, &read_back(&stack, &listener).await), "", "the refusal changed nothing");

    // #1 was closed while its `closed` run never came; #2 is still open.
    let server = github().await;
    let pull = |number: u64, state: &str| {
        let mut p = fixture("pull.json");
        p["number"] = json!(number);
        p["state"] = json!(state);
        p
    };
    for (number, state) in [(1, "closed"), (2, "open")] {
        Mock::given(method("GET"))
            .and(path(format!("/repos/org/app/pulls/{number}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(pull(number, state)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let prune = stack
        .action()
        .env("GITHUB_API_URL", server.uri())
        .env("GITHUB_TOKEN", TOKEN)
        .args(["previews", "prune", "--cluster", "demo", "--repository", "org/app", "--aws-region", &stack.region])
        .run();
    assert_eq!(prune.code, Some(0), "{prune}");
    assert!(prune.stdout.contains("web-pr-1 (#1 is closed)") && prune.stdout.contains("1 preview removed"), "{prune}");
    assert!(!prune.stdout.contains("web-pr-2 ("), "an open pull request's preview stays:\n{prune}");
    assert_eq!(version(&url, &format!("pr-2.{DOMAIN}")).await, "pr-2");
    settles_on(&url, &format!("pr-1.{DOMAIN}"), "base").await;
    server.verify().await;

    let mut action = stack.action();
    action.input("dry-run", "true");
    let planned = preview_with(action, &stack, None, &listener, ("closed", 2, false), "");
    assert_eq!(planned.code, Some(0), "{planned}");
    assert!(planned.stdout.contains("pull request #2 closed: would remove listener rule"), "{planned}");
    assert_eq!(version(&url, &format!("pr-2.{DOMAIN}")).await, "pr-2", "a dry run removes nothing");
    let closed = preview(&stack, None, &listener, ("closed", 2, false), "");
    assert_eq!(closed.code, Some(0), "{closed}");
    assert_eq!(differences(&before, &read_back(&stack, &listener).await), "", "the base as it was");
}

/// A preview opened, pushed to and closed as a user with exactly the policy `iam-policy --preview`
/// prints, on the stack with IAM enforced (the resource-tag conditions included); and that policy
/// cannot delete a service or target group of a preview's name that does not carry the base
/// service's tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_lives_and_goes_with_exactly_the_printed_policy_which_deletes_only_tagged_previews() {
    let stack = stack().await;
    let seeded = stack.seed(&["--alb", "--desired", "1", "--env", "APP_VERSION=base"]);
    let listener = s(&seeded, "listener_arn").to_string();
    let url = stack.listener_url(&listener).await;
    let printed = stack
        .action()
        .args(["iam-policy", "--preview", "--aws-region", &stack.region, "--image", &stack.image])
        .args(["--cluster", "demo", "--service", "web", "--listener-arn", &listener])
        .run();
    assert_eq!(printed.code, Some(0), "{printed}");
    let policy: Value = serde_json::from_str(&printed.stdout).unwrap();
    let sids: Vec<&str> = policy["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap()).collect();
    assert!(!sids.contains(&"EcsServices"), "the base service is read, never changed: {sids:?}");

    // Not the action's: a service and a target group of a preview's name without the base's tag.
    let sdk = stack.sdk().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let revision = s(&seeded, "task_definition_arn");
    ecs.create_service()
        .cluster("demo")
        .service_name("web-pr-5")
        .task_definition(revision)
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let vpc = elb.describe_target_groups().names("web").send().await.unwrap().target_groups()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let foreign = elb
        .create_target_group()
        .name("web-pr-5")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .send()
        .await
        .unwrap();
    let foreign_tg = foreign.target_groups()[0].target_group_arn().unwrap().to_string();

    let (id, secret) = stack.iam_user("previews", &policy);
    let as_user = |pr| preview_as(&stack, &listener, pr, &id, &secret);
    stack.enforce_iam(true).await;
    let opened = as_user(("opened", 4, false));
    let pushed = as_user(("synchronize", 4, false));
    let user = aws_config::SdkConfig::builder()
        .region(sdk.region().cloned())
        .endpoint_url(sdk.endpoint_url().unwrap())
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
            aws_sdk_ecs::config::Credentials::new(&id, &secret, None, None, "test"),
        ))
        .build();
    let delete_service =
        aws_sdk_ecs::Client::new(&user).delete_service().cluster("demo").service("web-pr-5").force(true).send().await;
    let delete_tg = aws_sdk_elasticloadbalancingv2::Client::new(&user)
        .delete_target_group()
        .target_group_arn(&foreign_tg)
        .send()
        .await;
    let closed = as_user(("closed", 4, false));
    stack.enforce_iam(false).await;

    assert_eq!(opened.code, Some(0), "with exactly the printed policy:\n{opened}");
    assert_eq!(pushed.code, Some(0), "{pushed}");
    assert!(!format!("{opened}{pushed}").contains("::warning"), "{opened}\n{pushed}");
    assert_eq!(closed.code, Some(0), "{closed}");
    let refused = |e: String| e.contains("AccessDenied");
    assert!(refused(format!("{:?}", delete_service.unwrap_err())), "an untagged service of a preview's name");
    assert!(refused(format!("{:?}", delete_tg.unwrap_err())), "an untagged target group of a preview's name");
    settles_on(&url, &format!("pr-4.{DOMAIN}"), "base").await;
    let left = ecs.describe_services().cluster("demo").services("web-pr-5").send().await.unwrap();
    assert_eq!(left.services()[0].status(), Some("ACTIVE"), "not the action's: left as it was");
}

/// `preview` as the IAM user `id`.
fn preview_as(stack: &Stack, listener: &str, pr: (&str, u64, bool), id: &str, secret: &str) -> Run {
    let mut action = stack.action();
    action.env("AWS_ACCESS_KEY_ID", id).env("AWS_SECRET_ACCESS_KEY", secret);
    preview_with(action, stack, None, listener, pr, &format!("pr-{}", pr.1))
}

/// A preview whose first deploy never becomes healthy is removed again, every part of it: nothing of
/// a failed preview is left running or routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_deploy_that_fails_removes_what_it_made() {
    let stack = stack().await;
    let seeded = stack.seed(&["--alb", "--desired", "1", "--env", "APP_VERSION=base"]);
    let listener = s(&seeded, "listener_arn").to_string();
    let before = read_back(&stack, &listener).await;
    let mut action = stack.action();
    action.input("wait-timeout", "30s");
    let failed = preview_with(action, &stack, None, &listener, ("opened", 8, false), "broken\nHEALTHY=false");
    assert_eq!(failed.code, Some(1), "{failed}");
    assert!(failed.stdout.contains("the preview is removed again"), "{failed}");
    // Traffic first: the rule goes before the service and its target group.
    let at = |part: &str| failed.stdout.find(part).unwrap_or_else(|| panic!("{part}:\n{failed}"));
    assert!(at("removed listener rule") < at("removed service web-pr-8"), "{failed}");
    assert!(at("removed service web-pr-8") < at("removed target group"), "{failed}");
    assert_eq!(output(&failed, "status"), "rolled-back");
    assert_eq!(differences(&before, &read_back(&stack, &listener).await), "", "nothing of it is left");
}
