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
    let (action, number, fork) = pr;
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    let head = if fork { "someone/app" } else { "org/app" };
    let payload = json!({
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "head": { "sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "repo": { "full_name": head, "fork": fork } },
            "base": { "repo": { "full_name": "org/app", "fork": false } }
        }
    });
    std::fs::write(&event, payload.to_string()).unwrap();
    let outputs = dir.path().join("outputs");
    let mut action = stack.action();
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

    let closed = preview(&stack, None, &listener, ("closed", 2, false), "");
    assert_eq!(closed.code, Some(0), "{closed}");
    assert_eq!(differences(&before, &read_back(&stack, &listener).await), "", "the base as it was");
}
