//! Credentials: the GitHub OIDC path (the runner's token endpoint played by wiremock, STS by moto),
//! the refusal when Actions offers no OIDC, and no secret in any line but `::add-mask::`.

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{OIDC_BEARER, OIDC_JWT, Run, Stack, oidc_token_server, repo_root, stack, unique};

const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";
const EXISTING: &str = "127.0.0.1:5000/app@sha256:0000000000000000000000000000000000000000000000000000000000000001";
const BEARER: &str = OIDC_BEARER;
const JWT: &str = OIDC_JWT;

async fn token_endpoint(audience: &str) -> MockServer {
    oidc_token_server(audience, 1).await
}

fn in_actions(stack: &Stack, token_server: &MockServer) -> crate::support::Action {
    let mut action = stack.action();
    action.with_oidc(token_server, ROLE).input("aws-region", &stack.region);
    action
}

#[tokio::test]
async fn oidc_token_is_requested_with_bearer_and_audience_then_exchanged_with_sts() {
    let stack = stack().await;
    let server = token_endpoint("sts.amazonaws.com").await;
    let run = in_actions(&stack, &server).input("image", EXISTING).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains(&format!(
            "credentials: GitHub OIDC token (audience sts.amazonaws.com) → sts:AssumeRoleWithWebIdentity {ROLE}"
        )),
        "{run}"
    );
    assert_only_masked(&run, &[JWT, BEARER]);
    server.verify().await;
}

#[tokio::test]
async fn a_custom_audience_reaches_the_token_endpoint() {
    let stack = stack().await;
    let server = token_endpoint("my-audience").await;
    let run = in_actions(&stack, &server).input("image", EXISTING).input("audience", "my-audience").run();
    assert_eq!(run.code, Some(0), "{run}");
    server.verify().await;
}

#[tokio::test]
async fn actions_without_oidc_variables_names_the_missing_permission() {
    let stack = stack().await;
    let run = stack
        .action()
        .env("GITHUB_ACTIONS", "true")
        .input("aws-region", &stack.region)
        .input("role-to-assume", ROLE)
        .input("image", EXISTING)
        .run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("::error title=Could not get AWS credentials::"), "{run}");
    assert!(run.stdout.contains("`permissions: id-token: write`"), "{run}");
}

#[tokio::test]
async fn a_refused_token_request_is_not_retried_and_names_the_permission() {
    let stack = stack().await;
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(403)).expect(1).mount(&server).await;
    let run = in_actions(&stack, &server).input("image", EXISTING).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("refused the request (403 Forbidden): is `permissions: id-token: write` granted"),
        "{run}"
    );
    server.verify().await;
}

#[tokio::test]
async fn a_full_build_and_push_prints_no_secret_outside_add_mask() {
    let stack = stack().await;
    let server = token_endpoint("sts.amazonaws.com").await;
    let dir = tempfile::tempdir().unwrap();
    let (outputs, summary) = (dir.path().join("outputs"), dir.path().join("summary"));
    let github_token = "ghs_KnownGithubTokenValue0123456789";
    let mut run = in_actions(&stack, &server)
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .input("github-token", github_token)
        .input("ecr-repository", "demo-app")
        .input("registry", &stack.registry)
        .input("tags", &unique("secrets"))
        .input("context", repo_root().join("demo-app").to_str().unwrap())
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    run.outputs = std::fs::read_to_string(&outputs).unwrap_or_default();
    let summary = std::fs::read_to_string(&summary).unwrap_or_default();
    // Everything the run masked (STS's credentials, ECR's token and password) plus what we know.
    let mut secrets: Vec<String> =
        run.stdout.lines().filter_map(|l| l.strip_prefix("::add-mask::")).map(str::to_string).collect();
    assert!(secrets.len() >= 6, "expected the token, STS credentials and ECR token to be masked: {secrets:?}");
    secrets.extend([JWT, BEARER, github_token, "123456789012-auth-token"].map(String::from));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_only_masked(&run, &secrets);
    for secret in &secrets {
        assert!(!run.outputs.contains(secret), "a secret reached the outputs");
        assert!(!summary.contains(secret), "a secret reached the job summary");
    }
    server.verify().await;
}

/// A canary longer than its (shrunk) session: the session is refreshed with a fresh OIDC token
/// before it expires, every new key is masked, and the deploy succeeds.
#[tokio::test]
async fn a_run_longer_than_its_session_refreshes_the_credentials_with_a_fresh_oidc_token() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--desired", "1"]);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(header("authorization", format!("Bearer {BEARER}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "count": 1, "value": JWT })))
        .expect(3..)
        .mount(&server)
        .await;
    let run = with_short_sessions(&stack, &server, &seeded, "50%:8s, 100%").run();
    assert_eq!(run.code, Some(0), "{run}");
    let refreshed = run.stdout.matches(&format!("credentials: refreshed the session of {ROLE} (valid until ")).count();
    assert!(refreshed >= 2, "a 10 s canary with 3 s sessions refreshes them more than once:\n{run}");
    let secrets: Vec<&str> = run.stdout.lines().filter_map(|l| l.strip_prefix("::add-mask::")).collect();
    assert!(secrets.len() >= 3 * (refreshed + 1), "every session's keys are masked: {secrets:?}");
    let mut known = secrets.clone();
    known.extend([JWT, BEARER]);
    assert_only_masked(&run, &known);
    server.verify().await;
}

/// A canary of `steps` on the seeded demo/web whose role sessions last about 3 s: 900 s sessions,
/// refreshed when less than 897 s is left.
fn with_short_sessions(
    stack: &Stack,
    server: &MockServer,
    seeded: &serde_json::Value,
    steps: &str,
) -> crate::support::Action {
    let mut action = in_actions(stack, server);
    action
        .env("ECS_DEPLOY_TEST_REFRESH_MARGIN", "897s")
        .input("role-duration-seconds", "900")
        .input("image", &stack.image)
        .input("cluster", "demo")
        .input("service", "web")
        .input("strategy", "canary")
        .input("listener-arn", crate::support::s(seeded, "listener_arn"))
        .input("canary-steps", steps)
        .input("check-interval", "1s");
    action
}

/// Each secret appears in no line of the run's output except `::add-mask::` lines.
fn assert_only_masked(run: &Run, secrets: &[&str]) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        for line in text.lines().filter(|l| !l.starts_with("::add-mask::")) {
            for secret in secrets {
                assert!(!line.contains(secret), "a secret reached {stream}: {line}");
            }
        }
    }
}

/// Issue 24.6: a refresh that fails (the runner's token endpoint down) does not cut the run off while
/// the held session is still valid: calls go on with it, the refresh is retried in the background
/// and each failure is a warning saying until when the session lasts.
#[tokio::test]
async fn a_failed_refresh_is_retried_while_the_held_session_carries_the_run() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--desired", "1"]);
    let server = MockServer::start().await;
    // One token, for the first session; every later request fails.
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "count": 1, "value": JWT })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503).set_body_json(serde_json::json!({ "message": "unavailable" })))
        .mount(&server)
        .await;
    // Long enough for the refresh, whose token requests are retried with backoff, to fail at least once.
    let run = with_short_sessions(&stack, &server, &seeded, "50%:15s, 100%").run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains(&format!("::warning::credentials: could not refresh the session of {ROLE} (")),
        "{run}"
    );
    assert!(run.stdout.contains("the current one is valid until "), "{run}");
    assert!(!run.stdout.contains("credentials: refreshed the session"), "no refresh succeeded: {run}");
    let mut known: Vec<&str> = run.stdout.lines().filter_map(|l| l.strip_prefix("::add-mask::")).collect();
    known.extend([JWT, BEARER]);
    assert_only_masked(&run, &known);
}
