//! From context to registry, for real: the local Docker engine builds, the local registry (basic
//! auth, ECR's token from moto) receives, and the action reports the digest the registry serves.

use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, EventsOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::support::{Run, Stack, output, repo_root, stack, unique};

const REGISTRY_USER: &str = "AWS";
const REGISTRY_PASSWORD: &str = "123456789012-auth-token";

/// The digest the registry itself serves for `repo:tag`, asked directly (not through the action).
async fn registry_digest(stack: &Stack, repo: &str, tag: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .head(format!("http://{}/v2/{repo}/manifests/{tag}", stack.registry))
        .basic_auth(REGISTRY_USER, Some(REGISTRY_PASSWORD))
        .header("accept", "application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .await
        .unwrap();
    (response.status() == 200).then(|| response.headers()["docker-content-digest"].to_str().unwrap().to_string())
}

fn build_only(stack: &Stack, context: &Path, repo: &str, tag: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut run = stack
        .action()
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_ACTIONS", "true")
        .args(["--aws-region", &stack.region, "--ecr-repository", repo, "--registry", &stack.registry, "--tags", tag])
        .args([std::ffi::OsStr::new("--context"), context.as_os_str()])
        .run();
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    run
}

#[tokio::test]
async fn builds_and_pushes_then_a_rerun_builds_and_pushes_nothing() {
    let stack = stack().await;
    let tag = unique("t");
    let run = build_only(&stack, &repo_root().join("demo-app"), "demo-app", &tag);
    assert_eq!(run.code, Some(0), "{run}");
    let digest = registry_digest(&stack, "demo-app", &tag).await.expect("the registry serves the pushed tag");
    assert_eq!(output(&run, "image-digest"), digest);
    assert_eq!(output(&run, "image-uri"), format!("{}/demo-app@{digest}", stack.registry));
    assert!(run.stdout.contains("::group::Build"), "{run}");
    assert!(run.stdout.contains("] COPY dist/demo-app /demo-app  "), "a line per step streams into the log:\n{run}");
    assert!(run.stdout.contains("): built with BuildKit in "), "{run}");

    // The same run again: the engine records no build and no push, the registry keeps the digest.
    let docker = Docker::connect_with_local_defaults().unwrap();
    let since = unix_now();
    let rerun = build_only(&stack, &repo_root().join("demo-app"), "demo-app", &tag);
    let until = unix_now();
    assert_eq!(rerun.code, Some(0), "{rerun}");
    assert!(rerun.stdout.contains("is already in the registry"), "{rerun}");
    assert_eq!(output(&rerun, "image-digest"), digest);
    let options = EventsOptionsBuilder::new().since(&since).until(&until).build();
    let events: Vec<String> = docker
        .events(Some(options))
        .filter_map(|e| async move { e.ok() })
        .filter(|e| std::future::ready(matches!(e.typ, Some(bollard::models::EventMessageTypeEnum::IMAGE))))
        .map(|e| format!("{:?} {:?}", e.action, e.actor.and_then(|a| a.attributes)))
        .collect()
        .await;
    let touched: Vec<&String> = events.iter().filter(|e| e.contains(&tag)).collect();
    assert!(touched.is_empty(), "the re-run built or pushed: {touched:?}");
    assert_eq!(registry_digest(&stack, "demo-app", &tag).await, Some(digest));
}

#[tokio::test]
async fn the_demo_app_image_runs_and_answers_health() {
    let stack = stack().await;
    let tag = unique("run");
    let run = build_only(&stack, &repo_root().join("demo-app"), "demo-app", &tag);
    assert_eq!(run.code, Some(0), "{run}");
    let docker = Docker::connect_with_local_defaults().unwrap();
    let name = unique("demo-app-health");
    let body = ContainerCreateBody {
        image: Some(format!("{}/demo-app:{tag}", stack.registry)),
        env: Some(vec!["GIT_SHA=abc123".into()]),
        host_config: Some(HostConfig {
            port_bindings: Some(
                [(
                    "8080/tcp".to_string(),
                    Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) }]),
                )]
                .into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker.create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body).await.unwrap();
    docker.start_container(&name, None).await.unwrap();
    let result = async {
        let inspect = docker.inspect_container(&name, None).await.unwrap();
        let port = inspect.network_settings.unwrap().ports.unwrap()["8080/tcp"].as_ref().unwrap()[0]
            .host_port
            .clone()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/health");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match reqwest::get(&url).await {
                Ok(r) => break (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("the demo-app container never answered: {e}"),
            }
        }
    }
    .await;
    let _ = docker.remove_container(&name, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
    assert_eq!(result, (200, r#"{"status":"ok"}"#.to_string()));
}

#[tokio::test]
async fn dockerignored_files_stay_out_of_the_image() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /ctx/\nCMD [\"/none\"]\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "secret.env\nbuild/\n").unwrap();
    std::fs::write(ctx.join("secret.env"), "TOKEN=do-not-ship").unwrap();
    std::fs::write(ctx.join("kept.txt"), "kept").unwrap();
    std::fs::create_dir(ctx.join("build")).unwrap();
    std::fs::write(ctx.join("build/big.bin"), "x").unwrap();
    let tag = unique("ign");
    let run = build_only(&stack, ctx, "ignore-test", &tag);
    assert_eq!(run.code, Some(0), "{run}");

    let docker = Docker::connect_with_local_defaults().unwrap();
    let name = unique("ignore-test");
    let body =
        ContainerCreateBody { image: Some(format!("{}/ignore-test:{tag}", stack.registry)), ..Default::default() };
    docker.create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body).await.unwrap();
    let exists = |path: &'static str| {
        let docker = docker.clone();
        let name = name.clone();
        async move {
            let options = DownloadFromContainerOptionsBuilder::new().path(path).build();
            let mut stream = docker.download_from_container(&name, Some(options));
            matches!(stream.next().await, Some(Ok(_)))
        }
    };
    let (kept, secret, build) =
        (exists("/ctx/kept.txt").await, exists("/ctx/secret.env").await, exists("/ctx/build").await);
    let _ = docker.remove_container(&name, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
    assert!(kept, "kept.txt should be in the image");
    assert!(!secret, "secret.env is in .dockerignore but reached the image");
    assert!(!build, "build/ is in .dockerignore but reached the image");
}

#[tokio::test]
async fn a_broken_dockerfile_shows_the_failing_instruction_and_pushes_nothing() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY does-not-exist /app\n").unwrap();
    let tag = unique("broken");
    let run = build_only(&stack, dir.path(), "broken", &tag);
    assert_eq!(run.code, Some(1), "{run}");
    // The failing step and BuildKit's own error for it.
    assert!(run.stdout.contains("::error title=Image failed::the image build failed at #"), "{run}");
    assert!(run.stdout.contains("] COPY does-not-exist /app: \"/does-not-exist\" not found"), "{run}");
    assert_eq!(registry_digest(&stack, "broken", &tag).await, None);
}

#[tokio::test]
async fn a_registry_that_refuses_the_credentials_is_named_and_gets_nothing() {
    let stack = stack().await;
    // A role in another account: moto's ECR token is then `AWS:111111111111-auth-token`, which the
    // local registry's htpasswd does not accept.
    let tag = unique("denied");
    let run = stack
        .action()
        .args([
            "--aws-region",
            &stack.region,
            "--ecr-repository",
            "denied",
            "--registry",
            &stack.registry,
            "--tags",
            &tag,
        ])
        .args(["--context", repo_root().join("demo-app").to_str().unwrap()])
        .args(["--role-to-assume", "arn:aws:iam::111111111111:role/deploy"])
        .run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("credentials: no OIDC: the ambient credentials → sts:AssumeRole"), "{run}");
    assert!(
        run.stdout.contains(&format!("the registry {} refused the credentials (HTTP 401)", stack.registry)),
        "{run}"
    );
    assert!(!run.stdout.contains("Step 1/"), "nothing should be built when the registry refuses us:\n{run}");
    assert_eq!(registry_digest(&stack, "denied", &tag).await, None);
}

/// Now as Docker's events API reads it: seconds with nanoseconds, so the window starts exactly here.
fn unix_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// SIGINT while the image builds (its `ADD` fetches from a loopback server that answers after 30 s):
/// the run ends at once, non-zero, and nothing was registered or deployed.
#[tokio::test]
async fn sigint_during_the_build_ends_the_run_at_once_with_nothing_changed() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_body_string("late").set_delay(Duration::from_secs(30)))
        .mount(&slow)
        .await;
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("Dockerfile"), format!("FROM scratch\nADD {}/slow /slow\n", slow.uri()))
        .unwrap();
    let ecs = stack.ecs().await;
    let revisions = || async {
        let out = ecs.list_task_definitions().family_prefix("web").send().await.unwrap();
        out.task_definition_arns().to_vec()
    };
    let before = revisions().await;
    let mut child = stack
        .action()
        .args(["--aws-region", &stack.region, "--ecr-repository", "demo-app", "--registry", &stack.registry])
        .args(["--tags", &unique("slow"), "--cluster", "demo", "--service", "web"])
        .args([std::ffi::OsStr::new("--context"), context.path().as_os_str()])
        .spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while slow.received_requests().await.unwrap_or_default().is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its build fetched");
        assert!(tokio::time::Instant::now() < deadline, "the build never fetched its ADD");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signalled = tokio::time::Instant::now();
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(signalled.elapsed() < Duration::from_secs(2), "{:?}\n{run}", signalled.elapsed());
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("cancelled (SIGINT/SIGTERM)"), "{run}");
    assert!(run.stdout.contains("The service was not changed."), "{run}");
    assert_eq!(revisions().await, before, "nothing registered");
}

/// A registry on loopback that is neither ECR nor `registry` (played by wiremock, with the registry
/// token flow): the tag is resolved anonymously, and no request to it carries ECR's credentials.
#[tokio::test]
async fn another_registry_never_gets_the_ecr_token_and_a_tag_is_resolved_anonymously() {
    use wiremock::matchers::{header, header_exists, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let stack = stack().await;
    let other = MockServer::start().await;
    let manifest = "/v2/org/app/manifests/1.4";
    Mock::given(method("HEAD"))
        .and(path(manifest))
        .and(header("authorization", "Bearer anonymous-pull-token"))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", DIGEST))
        .mount(&other)
        .await;
    let challenge = format!(r#"Bearer realm="{}/token",service="other",scope="repository:org/app:pull""#, other.uri());
    Mock::given(method("HEAD"))
        .and(path(manifest))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge.as_str()))
        .with_priority(10)
        .mount(&other)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "other"))
        .and(query_param("scope", "repository:org/app:pull"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": "anonymous-pull-token" })))
        .mount(&other)
        .await;
    // Anything carrying basic credentials would be ECR's token: it must never come.
    Mock::given(header_exists("authorization"))
        .and(wiremock::matchers::header_regex("authorization", "^Basic "))
        .respond_with(ResponseTemplate::new(418))
        .with_priority(1)
        .expect(0)
        .mount(&other)
        .await;
    let host = other.address().to_string();
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut run = stack
        .action()
        .env("GITHUB_OUTPUT", &outputs)
        .args(["--aws-region", &stack.region, "--image", &format!("{host}/org/app:1.4")])
        .run();
    run.outputs = std::fs::read_to_string(&outputs).unwrap_or_default();
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(output(&run, "image-uri"), format!("{host}/org/app@{DIGEST}"), "{run}");
    let requests = other.received_requests().await.unwrap();
    assert!(requests.len() >= 3, "challenge, token, manifest: {requests:?}");
    for r in &requests {
        let auth = r.headers.get("authorization").map(|v| v.to_str().unwrap_or_default().to_string());
        assert!(!auth.clone().unwrap_or_default().starts_with("Basic"), "ECR's credentials reached {host}: {auth:?}");
        assert!(!format!("{r:?}").contains(REGISTRY_PASSWORD), "ECR's password reached {host}");
    }
    other.verify().await;
}
