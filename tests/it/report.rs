//! The report on GitHub, through octocrab against wiremock with GitHub-shaped responses: the comment
//! is created when absent and edited in place when present (even past the first page), another
//! user's comment is never touched, GitHub failures leave the deploy green with a warning, and
//! Deployments get their statuses. A catch-all fails any test that sends a request nobody expected.

use serde_json::{Value, json};
use wiremock::matchers::{any, body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{Run, Stack, output, repo_root, s, stack};

const TOKEN: &str = "ghs_ReportTestToken0123456789abcdef";
const SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const MARKER: &str = "<!-- ecs-deploy-action:demo/web -->";

pub(crate) fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("tests/resources/github").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub(crate) fn comment(id: u64, login: &str, kind: &str, body: &str) -> Value {
    let mut c = fixture("comment.json");
    c["id"] = json!(id);
    c["html_url"] = json!(format!("https://github.com/org/app/pull/7#issuecomment-{id}"));
    c["url"] = json!(format!("https://api.github.com/repos/org/app/issues/comments/{id}"));
    c["user"]["login"] = json!(login);
    c["user"]["type"] = json!(kind);
    c["body"] = json!(body);
    c
}

/// GitHub's API with the calls every run makes, and a catch-all that fails on anything else.
pub(crate) async fn github() -> MockServer {
    let server = MockServer::start().await;
    // The Actions token cannot ask who it is.
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(403).set_body_json(fixture("forbidden.json")))
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(599))
        .with_priority(u8::MAX)
        .expect(0)
        .named("catch-all: a request nobody expected")
        .mount(&server)
        .await;
    server
}

async fn comments_page(server: &MockServer, page: u32, comments: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path("/repos/org/app/issues/7/comments"))
        .and(query_param("page", page.to_string()))
        .and(query_param("per_page", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(comments))
        .mount(server)
        .await;
}

/// Our comment on #7 is created as `id`, then edited in place, as often as the run updates it.
async fn comment_created_then_edited(server: &MockServer, id: u64) {
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(echo_comment(id))
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/repos/org/app/issues/comments/{id}")))
        .respond_with(echo_comment(id))
        .mount(server)
        .await;
}

/// Answers a comment create or edit with the comment GitHub would return.
pub(crate) fn echo_comment(id: u64) -> impl Fn(&Request) -> ResponseTemplate {
    move |req: &Request| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let status = if req.method == wiremock::http::Method::POST { 201 } else { 200 };
        ResponseTemplate::new(status).set_body_json(comment(
            id,
            "github-actions[bot]",
            "Bot",
            body["body"].as_str().unwrap_or(""),
        ))
    }
}

struct Deploy {
    run: Run,
    summary: String,
}

/// A rolling deploy of demo/web in Actions, reporting to `server` for pull request #7.
async fn deploy(stack: &Stack, server: &MockServer, event: &str, extra: &[&str]) -> Deploy {
    stack.seed(&[]);
    deploy_seeded(stack, server, event, extra).await
}

/// Like `deploy`, on the emulator as it is.
async fn deploy_seeded(stack: &Stack, server: &MockServer, event: &str, extra: &[&str]) -> Deploy {
    deploy_release(stack, server, event, "", extra).await
}

/// Like `deploy_seeded`, with `release_env` (`KEY=VALUE` lines) added to the new revision.
async fn deploy_release(stack: &Stack, server: &MockServer, event: &str, release_env: &str, extra: &[&str]) -> Deploy {
    let dir = tempfile::tempdir().unwrap();
    let event_path = dir.path().join("event.json");
    let event_body = match event {
        "pull_request" => {
            json!({ "action": "synchronize", "number": 7, "pull_request": { "number": 7, "head": { "sha": SHA } } })
        }
        "issue_comment" => json!({
            "action": "created",
            "issue": { "number": 7, "pull_request": { "url": "https://api.github.com/repos/org/app/pulls/7" } },
            "comment": { "body": "/deploy" }
        }),
        _ => json!({ "ref": "refs/heads/main", "after": SHA }),
    };
    std::fs::write(&event_path, event_body.to_string()).unwrap();
    let (outputs, summary) = (dir.path().join("outputs"), dir.path().join("summary"));
    let mut run = in_github(stack, server, event, &event_path)
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .input("environment-variables", &format!("DATABASE_PASSWORD=hunter2-env-secret\n{release_env}"))
        .args(extra)
        .run();
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    let summary = std::fs::read_to_string(summary).unwrap_or_default();
    Deploy { run, summary }
}

/// The action as a job of org/app runs it on `event` (its payload at `event_path`), deploying the
/// demo image to demo/web and reporting to `server`.
fn in_github(stack: &Stack, server: &MockServer, event: &str, event_path: &std::path::Path) -> crate::support::Action {
    let mut action = stack.action();
    action
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_API_URL", server.uri())
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "org/app")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_EVENT_PATH", event_path)
        .input("github-token", TOKEN)
        .input("aws-region", &stack.region)
        .input("image", &stack.image)
        .input("cluster", "demo")
        .input("service", "web");
    action
}

/// Bodies of the requests to `path` with `method`, in order.
pub(crate) async fn bodies(server: &MockServer, method: &str, path: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == method && r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// No secret in anything GitHub received, in the summary or in the outputs.
async fn assert_no_secret(server: &MockServer, d: &Deploy) {
    for request in server.received_requests().await.unwrap_or_default() {
        let body = String::from_utf8_lossy(&request.body);
        for secret in [TOKEN, "hunter2-env-secret"] {
            assert!(!body.contains(secret), "a secret reached GitHub in {} {}", request.method, request.url);
        }
    }
    for secret in [TOKEN, "hunter2-env-secret"] {
        assert!(!d.summary.contains(secret), "a secret reached the summary");
        assert!(!d.run.outputs.contains(secret), "a secret reached the outputs");
    }
}

#[tokio::test]
async fn the_comment_is_created_when_absent_then_edited_in_place() {
    let stack = stack().await;
    let server = github().await;
    comments_page(&server, 1, vec![comment(3, "alice", "User", "Looks good to me")]).await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(echo_comment(900))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/org/app/issues/comments/900"))
        .respond_with(echo_comment(900))
        .expect(1..)
        .mount(&server)
        .await;
    let d = deploy(&stack, &server, "pull_request", &[]).await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    let created = bodies(&server, "POST", "/repos/org/app/issues/7/comments").await;
    assert!(created[0]["body"].as_str().unwrap().starts_with(MARKER));
    let edits = bodies(&server, "PATCH", "/repos/org/app/issues/comments/900").await;
    let last = edits.last().unwrap()["body"].as_str().unwrap().to_string();
    assert!(last.starts_with(MARKER), "{last}");
    assert!(last.contains("### ✅ Deploy to `demo/web`: succeeded"), "{last}");
    assert!(last.contains("| Task definition | `web:2` (was `web:1`) |"), "{last}");
    assert!(last.contains("[Workflow run](https://github.com/org/app/actions/runs/4242)"), "{last}");
    assert_eq!(output(&d.run, "comment-url"), "https://github.com/org/app/pull/7#issuecomment-900");
    assert!(d.summary.contains("### ✅ Deploy to `demo/web`: succeeded"), "the summary is the same markdown");
    assert_no_secret(&server, &d).await;
    server.verify().await;
}

#[tokio::test]
async fn our_comment_past_the_first_page_is_edited_and_a_quoting_user_is_left_alone() {
    let stack = stack().await;
    let server = github().await;
    let chatter: Vec<Value> = (1..=100).map(|i| comment(i, "alice", "User", "discussion")).collect();
    comments_page(&server, 1, chatter).await;
    let quote = format!("> {MARKER}\n> ### ❌ Deploy failed\nwhy did this fail?");
    comments_page(
        &server,
        2,
        vec![
            comment(501, "bob", "User", &quote),
            comment(502, "mallory", "User", &format!("{MARKER}\nnot the bot")),
            comment(777, "github-actions[bot]", "Bot", &format!("{MARKER}\nold status")),
        ],
    )
    .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/org/app/issues/comments/777"))
        .respond_with(echo_comment(777))
        .expect(1..)
        .mount(&server)
        .await;
    let d = deploy(&stack, &server, "pull_request", &[]).await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    assert_eq!(output(&d.run, "comment-url"), "https://github.com/org/app/pull/7#issuecomment-777");
    // The catch-all proves that no comment was created and no other comment was edited.
    server.verify().await;
}

#[tokio::test]
async fn a_push_comments_on_the_open_pull_requests_of_the_commit() {
    let stack = stack().await;
    let server = github().await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/org/app/commits/{SHA}/pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "number": 7, "state": "open", "title": "Deploy me" },
            { "number": 3, "state": "closed", "title": "Old" }
        ])))
        .expect(1)
        .mount(&server)
        .await;
    comments_page(&server, 1, vec![]).await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(echo_comment(901))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/org/app/issues/comments/901"))
        .respond_with(echo_comment(901))
        .mount(&server)
        .await;
    let d = deploy(&stack, &server, "push", &[]).await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    server.verify().await;
}

#[tokio::test]
async fn a_403_on_the_comment_is_a_warning_naming_the_permission_and_the_deploy_stays_green() {
    let stack = stack().await;
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(ResponseTemplate::new(403).set_body_json(fixture("forbidden.json")))
        .expect(1)
        .mount(&server)
        .await;
    let d = deploy(&stack, &server, "pull_request", &[]).await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    assert_eq!(output(&d.run, "status"), "succeeded");
    assert!(
        d.run.stdout.contains("::warning::cannot comment on #7: GitHub answered 403 (Resource not accessible by integration): grant the job `permissions: pull-requests: write`"),
        "{}",
        d.run
    );
    assert_eq!(d.run.stdout.matches("::warning::").count(), 1, "one warning, not one per update:\n{}", d.run);
    server.verify().await;
}

#[tokio::test]
async fn a_500_from_github_is_a_warning_and_the_deploy_stays_green() {
    let stack = stack().await;
    let server = github().await;
    Mock::given(method("GET"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({ "message": "Server Error" })))
        .mount(&server)
        .await;
    let d = deploy(&stack, &server, "pull_request", &[]).await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    assert!(d.run.stdout.contains("::warning::cannot read the comments of #7: GitHub answered 500"), "{}", d.run);
    server.verify().await;
}

#[tokio::test]
async fn a_deployment_gets_in_progress_then_success_with_its_urls() {
    let stack = stack().await;
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    comment_created_then_edited(&server, 902).await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/deployments"))
        .and(body_partial_json(
            json!({ "ref": SHA, "environment": "staging", "auto_merge": false, "required_contexts": [] }),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("deployment.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/deployments/55/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1, "state": "success" })))
        .expect(2)
        .mount(&server)
        .await;
    let d = deploy(
        &stack,
        &server,
        "pull_request",
        &["--deployment-environment", "staging", "--environment-url", "https://staging.example.com"],
    )
    .await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    let statuses = bodies(&server, "POST", "/repos/org/app/deployments/55/statuses").await;
    let states: Vec<&str> = statuses.iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["in_progress", "success"]);
    for status in &statuses {
        assert_eq!(status["log_url"], "https://github.com/org/app/actions/runs/4242");
        assert_eq!(status["environment_url"], "https://staging.example.com");
    }
    server.verify().await;
}

#[tokio::test]
async fn a_rolled_back_deploy_marks_the_deployment_failed_and_shows_the_events() {
    let stack = stack().await;
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    comment_created_then_edited(&server, 903).await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/deployments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("deployment.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/deployments/55/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 2 })))
        .mount(&server)
        .await;
    stack.seed(&[]);
    let d =
        deploy_release(&stack, &server, "pull_request", "CRASH_ON_START=1", &["--deployment-environment", "staging"])
            .await;
    assert_eq!(d.run.code, Some(1), "{}", d.run);
    let statuses = bodies(&server, "POST", "/repos/org/app/deployments/55/statuses").await;
    assert_eq!(statuses.last().unwrap()["state"], "failure");
    let last = bodies(&server, "PATCH", "/repos/org/app/issues/comments/903").await.last().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(last.contains("### ↩️ Deploy to `demo/web`: rolled back"), "{last}");
    assert!(last.contains("**Rolled back:** ` ECS deployment circuit breaker: tasks failed to start."), "{last}");
    // What it left, where an on-call engineer looks first.
    assert!(last.contains("**Where it stands:** demo/web is back on web:1, with all traffic."), "{last}");
    assert!(last.contains("<summary>Last service events</summary>"), "{last}");
    // ECS's own rollback has finished by the time the run reports: its last event is the newest.
    assert!(
        last.contains("<summary>Last service events</summary>\n\n- ` (service web) has reached a steady state."),
        "{last}"
    );
    server.verify().await;
}

#[tokio::test]
async fn without_a_token_the_comment_goes_to_the_log() {
    let stack = stack().await;
    let seeded = stack.seed(&[]);
    let run = stack
        .action()
        .env("GITHUB_ACTIONS", "true")
        .env("ACT", "true")
        .args([
            "--aws-region",
            &stack.region,
            "--image",
            &stack.image,
            "--cluster",
            s(&seeded, "cluster"),
            "--service",
            "web",
        ])
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("::group::Report (no github-token: the pull-request comment as it would read)"),
        "{run}"
    );
    assert!(run.stdout.contains(MARKER), "{run}");
    assert!(run.stdout.contains("### ✅ Deploy to `demo/web`: succeeded"), "{run}");
}

#[tokio::test]
async fn a_comment_update_failing_mid_run_does_not_silence_the_rest() {
    let stack = stack().await;
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(echo_comment(905))
        .expect(1)
        .mount(&server)
        .await;
    // The first edit fails, GitHub's client retries included (502 four times); later edits work.
    Mock::given(method("PATCH"))
        .and(path("/repos/org/app/issues/comments/905"))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({ "message": "Bad Gateway" })))
        .up_to_n_times(4)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/org/app/issues/comments/905"))
        .respond_with(echo_comment(905))
        .expect(1..)
        .mount(&server)
        .await;
    let d = deploy(&stack, &server, "pull_request", &[]).await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    assert!(
        d.run.stdout.contains(
            "::warning::cannot comment on #7: GitHub answered 502 (Bad Gateway); trying again at the next update"
        ),
        "{}",
        d.run
    );
    let edits = bodies(&server, "PATCH", "/repos/org/app/issues/comments/905").await;
    let last = edits.last().unwrap()["body"].as_str().unwrap_or_default().to_string();
    assert!(
        last.contains("### ✅ Deploy to `demo/web`: succeeded"),
        "the final comment says how the run ended: {last}"
    );
    server.verify().await;
}

/// Issue 23.3: the reporter works beside the deploy, never in front of it. Here GitHub holds the
/// comment's creation past the client's 20 s: the image, the registration and the rollout go on
/// meanwhile (on the code before, the rollout began only after that call had given up), and the run
/// still ends green with its summary written.
#[tokio::test]
async fn a_github_that_does_not_answer_holds_up_nothing_of_the_deploy() {
    let stack = stack().await;
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    let echo = echo_comment(906);
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(move |req: &Request| echo(req).set_delay(std::time::Duration::from_secs(30)))
        .expect(1..)
        .mount(&server)
        .await;
    let d = deploy(&stack, &server, "pull_request", &[]).await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    let log = &d.run.stdout;
    let silent = log.find("::warning::cannot comment on #7: GitHub did not answer").expect("GitHub's silence is told");
    let rolling = log.find("updated demo/web to web:").expect("the rollout started");
    assert!(rolling < silent, "the rollout waited for GitHub: {log}");
    assert!(d.summary.contains("### ✅ Deploy to `demo/web`: succeeded"), "{}", d.summary);
    assert_eq!(output(&d.run, "status"), "succeeded");
    server.verify().await;
}

/// A deploy that cannot even get AWS credentials (here: no `id-token: write` for its role) says
/// so on the pull request: the report starts with the run, not after its credentials.
#[tokio::test]
async fn a_run_without_aws_credentials_says_why_on_the_pull_request() {
    let stack = stack().await;
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    comment_created_then_edited(&server, 907).await;
    let d =
        deploy(&stack, &server, "pull_request", &["--role-to-assume", "arn:aws:iam::123456789012:role/deploy"]).await;
    assert_eq!(d.run.code, Some(1), "{}", d.run);
    let posted = bodies(&server, "POST", "/repos/org/app/issues/7/comments").await;
    let edited = bodies(&server, "PATCH", "/repos/org/app/issues/comments/907").await;
    let last = edited.last().or(posted.last()).expect("a comment")["body"].as_str().unwrap_or_default().to_string();
    assert!(last.contains("### ❌ Deploy to `demo/web`: failed"), "{last}");
    assert!(last.contains("id-token: write"), "{last}");
    assert!(d.summary.contains("id-token: write"), "{}", d.summary);
    server.verify().await;
}

/// Lines of a log that the runner would run as workflow commands (outside `::stop-commands::`): it
/// ends a line at `\n` and at a bare `\r`, and reads the legacy `##[` form anywhere in a line.
pub fn live_commands(log: &str) -> Vec<&str> {
    let mut stopped: Option<String> = None;
    let mut live = Vec::new();
    for line in log.split(['\n', '\r']) {
        let trimmed = line.trim_start();
        match &stopped {
            Some(token) if trimmed == format!("::{token}::") => stopped = None,
            Some(_) => {}
            None if trimmed.starts_with("::stop-commands::") => {
                stopped = trimmed.strip_prefix("::stop-commands::").map(str::to_string)
            }
            None if trimmed.starts_with("::") || line.contains("##[") => live.push(line),
            None => {}
        }
    }
    live
}

/// What in `markdown` GitHub would render live: HTML, links, and text with a mention or our marker.
fn live_markdown(markdown: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let mut live = Vec::new();
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Html(h) | Event::InlineHtml(h) => live.push(format!("html {h}")),
            Event::Start(Tag::Link { dest_url, .. }) if !dest_url.contains("console.aws.amazon.com") => {
                live.push(format!("link {dest_url}"))
            }
            Event::Text(t) if t.contains("@org") || t.contains("pwned") => live.push(format!("text {t}")),
            _ => {}
        }
    }
    live
}

/// A CloudWatch alarm whose reason is hostile (newlines, workflow commands, a mention, HTML, a link,
/// our marker, 200 kB): it rolls the canary back, and none of it is live in the log, the comment or
/// the summary; the comment stays under GitHub's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_reason_is_inert_in_the_log_the_comment_and_the_summary() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--desired", "1"]);
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    comment_created_then_edited(&server, 906).await;
    // An alarm on a metric the stack does not publish: the state set here stays.
    let cw = aws_sdk_cloudwatch::Client::new(&stack.sdk().await);
    cw.put_metric_alarm()
        .alarm_name("app-errors")
        .namespace("Custom/App")
        .metric_name("Errors")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    let hostile = format!(
        "Threshold Crossed\n::error::pwned\n##[error]pwned\n@org/team look <img src=x onerror=alert(1)> \
         [click](https://evil.example/pwned) </details> {MARKER} `pwned` {}",
        "x".repeat(200_000)
    );
    cw.set_alarm_state()
        .alarm_name("app-errors")
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason(&hostile)
        .send()
        .await
        .unwrap();
    let d = deploy_seeded(
        &stack,
        &server,
        "pull_request",
        &[
            "--strategy",
            "canary",
            "--listener-arn",
            s(&seeded, "listener_arn"),
            "--alarms",
            "app-errors",
            "--canary-steps",
            "100%",
            "--check-interval",
            "1s",
        ],
    )
    .await;
    assert_eq!(d.run.code, Some(1), "{}", d.run);
    assert!(d.run.stdout.contains("app-errors in ALARM"), "{}", d.run);
    // Our own annotations carry the reason escaped (one line); a command of the reason's own would
    // start a line.
    let injected: Vec<String> = live_commands(&d.run.stdout)
        .into_iter()
        .filter(|l| ["::error::pwned", "##[error]pwned"].iter().any(|c| l.trim_start().starts_with(c)))
        .map(|l| l.chars().take(200).collect())
        .collect();
    assert!(injected.is_empty(), "workflow commands from the alarm's reason are live in the log: {injected:?}");
    let last = bodies(&server, "PATCH", "/repos/org/app/issues/comments/906").await.last().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    for (name, markdown) in [("comment", &last), ("summary", &d.summary)] {
        let live = live_markdown(markdown);
        let hostile: Vec<String> = live
            .iter()
            .filter(|l| ["pwned", "evil.example", "<img", "@org"].iter().any(|h| l.contains(h)))
            .map(|l| l.chars().take(200).collect())
            .collect();
        assert!(hostile.is_empty(), "live in the {name}: {hostile:?}");
        let count = |html: &str| live.iter().filter(|l| l.starts_with(&format!("html {html}"))).count();
        assert_eq!(count(MARKER), 1, "one live marker, ours, in the {name}: the quoted one is inert");
        assert_eq!(count("</details>"), count("<details"), "no `</details>` but ours in the {name}");
    }
    assert!(last.starts_with(MARKER), "ours is the marker that starts the comment");
    assert!(last.len() < 65_536, "the comment stays under GitHub's limit: {}", last.len());
    assert!(last.contains("more characters in the job log"), "the reason is capped");
    server.verify().await;
}

/// ChatOps: on `issue_comment` GITHUB_SHA is the default branch's head, whose pull requests are the
/// wrong ones; the comment goes to the pull request that was commented on (the catch-all fails the
/// test on a lookup of the commit's pull requests).
#[tokio::test]
async fn an_issue_comment_run_comments_on_the_commented_pull_request() {
    let stack = stack().await;
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(echo_comment(907))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/org/app/issues/comments/907"))
        .respond_with(echo_comment(907))
        .mount(&server)
        .await;
    let d = deploy(&stack, &server, "issue_comment", &[]).await;
    assert_eq!(d.run.code, Some(0), "{}", d.run);
    server.verify().await;
}

/// Issue 24.11: on `issue_comment` (ChatOps) GITHUB_SHA is the default branch's head; the Deployment
/// is for the pull request's head the workflow checked out and the action built.
#[tokio::test]
async fn an_issue_comment_deployment_is_for_the_commit_checked_out_not_github_sha() {
    const PR_HEAD: &str = "feedfacecafebeef0123456789abcdef01234567";
    let stack = stack().await;
    stack.seed(&[]);
    let server = github().await;
    comments_page(&server, 1, vec![]).await;
    comment_created_then_edited(&server, 906).await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/deployments"))
        .and(body_partial_json(json!({ "ref": PR_HEAD, "environment": "staging" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("deployment.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/deployments/55/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1, "state": "success" })))
        .expect(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    // The workspace as actions/checkout leaves it for `ref: refs/pull/7/head`: a detached HEAD.
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(workspace.join(".git")).unwrap();
    std::fs::write(workspace.join(".git/HEAD"), format!("{PR_HEAD}\n")).unwrap();
    let event_path = dir.path().join("event.json");
    let event = json!({
        "action": "created",
        "issue": { "number": 7, "pull_request": { "url": "https://api.github.com/repos/org/app/pulls/7" } },
        "comment": { "body": "/deploy" }
    });
    std::fs::write(&event_path, event.to_string()).unwrap();
    let run = in_github(&stack, &server, "issue_comment", &event_path)
        .env("GITHUB_WORKSPACE", &workspace)
        .input("deployment-environment", "staging")
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    server.verify().await;
}
