//! The Dockerfiles teams have (issue 26): BuildKit-only syntax built through the engine's API with
//! a session, each feature checked in the image it produced; build secrets that reach only their
//! mount and no sink; and a BuildKit-only Dockerfile refused before anything runs when the build
//! would be classic. Images start from a static busybox (Debian's busybox-static, `FROM scratch`):
//! nothing can be pulled here.

use std::path::Path;
use std::process::Command;

use crate::support::{Run, Stack, output, stack, unique};

/// A base image with a shell, built once per test process with the classic builder (the docker
/// CLI's legacy build: no session, nothing pulled).
fn busybox_base() -> &'static str {
    static BASE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", dir.path().join("busybox"))
            .expect("/bin/busybox: Debian's busybox-static (scripts/stack up installs it)");
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )
        .unwrap();
        let out = Command::new("docker")
            .args(["build", "-q", "-t", "ecs-deploy-action-test/busybox:base"])
            .arg(dir.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "the busybox base: {}", String::from_utf8_lossy(&out.stderr));
        "ecs-deploy-action-test/busybox:base"
    })
}

/// A context with `files`, built and pushed by the action (nothing deployed), with `extra` flags.
fn build(stack: &Stack, files: &[(&str, &str)], repo: &str, extra: &[&str]) -> (Run, String, String) {
    let dir = tempfile::tempdir().unwrap();
    write_context(dir.path(), files);
    build_in(stack, dir.path(), repo, extra)
}

/// The context `dir`, built and pushed by the action; with the image it pushed and the summary.
fn build_in(stack: &Stack, context: &Path, repo: &str, extra: &[&str]) -> (Run, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique("bk");
    let outputs = dir.path().join("outputs");
    let summary = dir.path().join("summary");
    let mut run = stack
        .action()
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_ACTIONS", "true")
        .args(["--aws-region", &stack.region, "--ecr-repository", repo, "--registry", &stack.registry])
        .args(["--tags", &tag])
        .args([std::ffi::OsStr::new("--context"), context.as_os_str()])
        .args(extra)
        .run();
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    let summary = std::fs::read_to_string(summary).unwrap_or_default();
    (run, format!("{}/{repo}:{tag}", stack.registry), summary)
}

fn write_context(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// What `script` prints in a container of `image` (busybox's sh).
fn inside(image: &str, script: &str) -> String {
    let out = Command::new("docker").args(["run", "--rm", image, "sh", "-c", script]).output().unwrap();
    assert!(out.status.success(), "{script} in {image}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn dockerfile() -> String {
    format!(
        "FROM {base} AS base\n\
         FROM base AS unused\n\
         RUN exit 1\n\
         FROM base AS app\n\
         ARG TARGETARCH\n\
         ARG GREETING\n\
         ARG ROUND\n\
         COPY --chmod=755 run.sh /run.sh\n\
         RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cp /mnt/data.txt /copied.txt\n\
         RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/x && ls /scratch > /tmpfs-seen'\n\
         RUN --mount=type=cache,target=/cache sh -c 'echo $ROUND >> /cache/rounds; cat /cache/rounds | wc -l > /cache-rounds'\n\
         RUN echo \"$TARGETARCH $GREETING\" > /args\n\
         FROM app AS final\n\
         RUN exit 1\n",
        base = busybox_base()
    )
}

#[tokio::test]
async fn buildkit_only_syntax_builds_and_each_feature_is_in_the_image() {
    let stack = stack().await;
    let dockerfile = dockerfile();
    let files =
        [("Dockerfile", dockerfile.as_str()), ("run.sh", "#!/bin/sh\necho run\n"), ("data.txt", "from a bind mount\n")];
    let flags = ["--target", "app", "--build-args", "GREETING=hello\nROUND=1"];
    let (run, image, summary) = build(&stack, &files, "bk-features", &flags);
    assert_eq!(run.code, Some(0), "{run}");
    // One line per step as it completes, the Dockerfile's steps named as BuildKit names them.
    assert!(run.stdout.contains("] RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cp "), "{run}");
    assert!(run.stdout.contains("  DONE "), "{run}");
    assert!(run.stdout.contains("): built with BuildKit in "), "{run}");
    assert!(!run.stdout.contains("RUN exit 1"), "stages the target does not need are not built:\n{run}");
    assert!(!output(&run, "image-digest").is_empty(), "{run}");
    assert!(
        summary.contains(" (built with BuildKit in ") && summary.contains(" step(s), "),
        "the summary says how:\n{summary}"
    );
    assert_eq!(inside(&image, "stat -c %a /run.sh"), "755", "COPY --chmod");
    assert_eq!(inside(&image, "cat /copied.txt"), "from a bind mount", "RUN --mount=type=bind");
    assert_eq!(inside(&image, "cat /tmpfs-seen; ls /scratch 2>/dev/null | wc -l"), "x\n0", "RUN --mount=type=tmpfs");
    assert_eq!(inside(&image, "cat /args"), "amd64 hello", "ARG TARGETARCH is set, build-args reach ARG");
    assert_eq!(
        inside(&image, "cat /cache-rounds; ls /cache 2>/dev/null | wc -l"),
        "1\n0",
        "a cache mount is not in the image"
    );

    // The cache mount outlives the build: the next build that runs the step finds the last one's.
    let flags = ["--target", "app", "--build-args", "GREETING=hello\nROUND=2"];
    let (run, image, _) = build(&stack, &files, "bk-features", &flags);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(inside(&image, "cat /cache-rounds"), "2", "RUN --mount=type=cache kept /cache between builds");
    assert!(run.stdout.contains("] COPY --chmod=755 run.sh /run.sh  CACHED"), "what did not change is cached:\n{run}");
}

#[tokio::test]
async fn a_build_secret_reaches_its_mount_and_nothing_else() {
    let stack = stack().await;
    let secret = format!("npm_{}", unique("s3cr3t"));
    // A secret is no part of a step's cache key: the nonce makes this build's steps its own.
    let dockerfile = format!(
        "FROM {}\nRUN echo {} > /nonce\nRUN --mount=type=secret,id=npm_token sha256sum /run/secrets/npm_token | cut -c1-64 > /secret-sum\n",
        busybox_base(),
        unique("nonce")
    );
    let (run, image, summary) =
        build(&stack, &[("Dockerfile", &dockerfile)], "bk-secret", &["--secrets", &format!("npm_token={secret}")]);
    assert_eq!(run.code, Some(0), "{run}");
    let sum =
        Command::new("sh").args(["-c", &format!("printf %s '{secret}' | sha256sum | cut -c1-64")]).output().unwrap();
    assert_eq!(
        inside(&image, "cat /secret-sum"),
        String::from_utf8_lossy(&sum.stdout).trim(),
        "the mount had the value"
    );
    assert_eq!(inside(&image, "ls /run/secrets 2>/dev/null | wc -l"), "0", "not in the image's filesystem");
    let history = Command::new("docker").args(["history", "--no-trunc", &image]).output().unwrap();
    let inspect = Command::new("docker").args(["image", "inspect", &image]).output().unwrap();
    let saved = Command::new("docker").args(["save", &image]).output().unwrap();
    for (sink, text) in [
        ("the image's history", String::from_utf8_lossy(&history.stdout).into_owned()),
        ("the image's config", String::from_utf8_lossy(&inspect.stdout).into_owned()),
        ("the image's layers", String::from_utf8_lossy(&saved.stdout).into_owned()),
        ("the log (but its mask command)", log_but_masks(&run)),
        ("the outputs", run.outputs.clone()),
        ("the summary", summary),
    ] {
        assert!(!text.contains(&secret), "the secret is in {sink}");
    }
    assert!(run.stdout.contains(&format!("::add-mask::{secret}")), "masked before first use:\n{run}");
}

/// The run's log without the `::add-mask::` lines, which carry the values they mask by design.
fn log_but_masks(run: &Run) -> String {
    let all = format!("{}\n{}", run.stdout, run.stderr);
    all.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn a_buildkit_only_dockerfile_is_refused_before_anything_runs_when_the_build_would_be_classic() {
    let stack = stack().await;
    let dockerfile = format!("FROM {}\nRUN echo one\nRUN --mount=type=cache,target=/c echo two\n", busybox_base());
    let (run, image, _) = build(&stack, &[("Dockerfile", &dockerfile)], "bk-classic", &["--builder", "classic"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout
            .contains("Dockerfile:3: `RUN --mount=type=cache,target=/c` needs BuildKit, and `builder` is `classic`"),
        "{run}"
    );
    assert!(!run.stdout.contains("::group::Build"), "nothing was built:\n{run}");
    let inspected = Command::new("docker").args(["image", "inspect", &image]).output().unwrap();
    assert!(!inspected.status.success(), "no image was made");
    // What the classic builder can build, it builds, and says which builder it was.
    let plain = format!("FROM {}\nRUN echo one > /one\n", busybox_base());
    let (run, image, _) = build(&stack, &[("Dockerfile", &plain)], "bk-classic", &["--builder", "classic"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("building with the classic builder (`builder: classic`)"), "{run}");
    assert_eq!(inside(&image, "cat /one"), "one");
}

/// A second Docker engine with an empty data root on a socket of its own: a fresh runner. It gets a
/// bridge of its own: a daemon started with `--bridge=none` deletes the host's docker0, which the
/// stack's engine needs.
struct FreshEngine {
    dir: tempfile::TempDir,
    daemon: std::process::Child,
    bridge: String,
}

impl FreshEngine {
    fn start() -> FreshEngine {
        let dir = tempfile::tempdir().unwrap();
        let bridge = format!("br{}", &unique("f")[2..]).chars().take(15).collect::<String>();
        let made = Command::new("ip").args(["link", "add", &bridge, "type", "bridge"]).status().unwrap();
        assert!(made.success(), "ip link add {bridge} type bridge");
        let _ = Command::new("ip").args(["addr", "add", "10.231.0.1/24", "dev", &bridge]).status();
        let _ = Command::new("ip").args(["link", "set", &bridge, "up"]).status();
        let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let daemon = Command::new("dockerd")
            .args(["--data-root", &p("data"), "--exec-root", &p("exec"), "--pidfile", &p("dockerd.pid")])
            .args(["-H", &format!("unix://{}", p("docker.sock"))])
            .args(["--bridge", &bridge, "--iptables=false", "--ip-masq=false"])
            .args(["--containerd-namespace", "fresh-runner", "--containerd-plugins-namespace", "fresh-runner-plugins"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let engine = FreshEngine { dir, daemon, bridge };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !Command::new("docker").args(["-H", &engine.host(), "version"]).output().unwrap().status.success() {
            let log = std::fs::read_to_string(engine.dir.path().join("dockerd.log")).unwrap_or_default();
            assert!(std::time::Instant::now() < deadline, "the fresh engine did not start:\n{log}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        engine
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }
}

impl Drop for FreshEngine {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.daemon.id().to_string()).status();
        let _ = self.daemon.wait();
        let _ = Command::new("ip").args(["link", "delete", &self.bridge]).status();
    }
}

/// The layer digests of `repo:tag` as the registry serves them.
async fn layers(stack: &Stack, repo: &str, tag: &str) -> Vec<String> {
    let manifest: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{}/v2/{repo}/manifests/{tag}", stack.registry))
        .basic_auth("AWS", Some("123456789012-auth-token"))
        .header("accept", "application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
}

/// Issue 26.3: a runner whose engine has never seen the image rebuilds after a one-line change
/// reusing every layer above it, from the cache the last build kept in the registry.
#[tokio::test]
async fn a_fresh_engine_rebuilds_only_what_changed_from_the_cache_in_the_registry() {
    let stack = stack().await;
    // The base image in the registry, built by the action itself (a fresh engine has no local one).
    let base_dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", base_dir.path().join("busybox")).unwrap();
    let base_file =
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
    write_context(base_dir.path(), &[("Dockerfile", base_file)]);
    let (run, base, _) = build_in(&stack, base_dir.path(), "bk-base", &[]);
    assert_eq!(run.code, Some(0), "{run}");
    let app = |source: &str| {
        format!("FROM {base}\nRUN sh -c 'sleep 2; echo {} > /deps'\nCOPY {source} /source.txt\n", unique("deps"))
    };
    let dockerfile = app("source.txt");
    let repo = unique("bk-cache").to_lowercase();
    let (first, image, _) = build(&stack, &[("Dockerfile", &dockerfile), ("source.txt", "one\n")], &repo, &[]);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(first.stdout.contains(&format!("build cache: {}/{repo}:buildcache", stack.registry)), "{first}");
    let first_layers = layers(&stack, &repo, image.rsplit(':').next().unwrap()).await;

    let fresh = FreshEngine::start();
    let dir = tempfile::tempdir().unwrap();
    write_context(dir.path(), &[("Dockerfile", &dockerfile), ("source.txt", "two\n")]);
    let tag = unique("bk");
    let second = stack
        .action()
        .env("DOCKER_HOST", fresh.host())
        .args(["--aws-region", &stack.region, "--ecr-repository", &repo, "--registry", &stack.registry])
        .args(["--tags", &tag])
        .args([std::ffi::OsStr::new("--context"), dir.path().as_os_str()])
        .run();
    assert_eq!(second.code, Some(0), "{second}");
    assert!(second.stdout.contains("] RUN sh -c 'sleep 2; echo "), "{second}");
    let deps_line = second.stdout.lines().find(|l| l.contains("] RUN sh -c 'sleep 2;")).unwrap_or_default();
    assert!(deps_line.ends_with("CACHED"), "the dependency step came from the registry's cache:\n{second}");
    let copy_line = second.stdout.lines().find(|l| l.contains("] COPY source.txt /source.txt")).unwrap_or_default();
    assert!(copy_line.contains("  DONE "), "the changed step was built:\n{second}");
    let second_layers = layers(&stack, &repo, &tag).await;
    assert_eq!(first_layers.len(), second_layers.len());
    assert_eq!(
        first_layers[..first_layers.len() - 1],
        second_layers[..second_layers.len() - 1],
        "same layers below the change"
    );
    assert_ne!(first_layers.last(), second_layers.last(), "the changed layer is new");
    drop(fresh);
    let docker0 = Command::new("ip").args(["link", "show", "docker0"]).output().unwrap();
    assert!(docker0.status.success(), "the fresh engine left the stack engine's bridge alone");
}

/// The action building `context` into `repo` with `args`, as a run of commit `sha`.
fn build_commit(stack: &Stack, context: &Path, repo: &str, sha: &str, args: &[&str]) -> Run {
    stack
        .action()
        .env("GITHUB_SHA", sha)
        .args(["--aws-region", &stack.region, "--ecr-repository", repo, "--registry", &stack.registry])
        .args([std::ffi::OsStr::new("--context"), context.as_os_str()])
        .args(args)
        .run()
}

/// The digest the registry serves for `repo:tag`.
async fn digest(stack: &Stack, repo: &str, tag: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .head(format!("http://{}/v2/{repo}/manifests/{tag}", stack.registry))
        .basic_auth("AWS", Some("123456789012-auth-token"))
        .header("accept", "application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .await
        .unwrap();
    (response.status() == 200).then(|| response.headers()["docker-content-digest"].to_str().unwrap().to_string())
}

/// Issue 26.4: a tag already in the registry is reused only when its image was built from this
/// commit. A moving tag from another commit is rebuilt and moves (it used to redeploy the old image
/// without a word); several tags go out with one push; the labels are on the image.
#[tokio::test]
async fn a_moving_tag_is_rebuilt_and_a_tag_from_this_commit_is_reused() {
    let stack = stack().await;
    let repo = unique("bk-tags");
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {}\nCOPY source.txt /source.txt\n", busybox_base());
    write_context(dir.path(), &[("Dockerfile", &dockerfile), ("source.txt", "one\n")]);
    let args = ["--tags", "latest,stable", "--labels", "team=payments"];
    let first = build_commit(&stack, dir.path(), &repo, "aaaa1111", &args);
    assert_eq!(first.code, Some(0), "{first}");
    let built = digest(&stack, &repo, "latest").await.expect("latest pushed");
    assert_eq!(digest(&stack, &repo, "stable").await.as_ref(), Some(&built), "both tags, one image");
    let labels = Command::new("docker")
        .args(["image", "inspect", "--format", "{{json .Config.Labels}}", &format!("{}/{repo}:latest", stack.registry)])
        .output()
        .unwrap();
    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).unwrap();
    assert_eq!(labels["team"], "payments");
    assert_eq!(labels["org.opencontainers.image.revision"], "aaaa1111");
    assert_eq!(labels["org.opencontainers.image.version"], "latest");

    write_context(dir.path(), &[("source.txt", "two\n")]);
    let second = build_commit(&stack, dir.path(), &repo, "bbbb2222", &args);
    assert_eq!(second.code, Some(0), "{second}");
    assert!(
        second.stdout.contains(&format!(
            "{}/{repo}:latest holds an image built from aaaa1111, not bbbb2222: rebuilding; the tag moves",
            stack.registry
        )),
        "{second}"
    );
    let moved = digest(&stack, &repo, "latest").await.unwrap();
    assert_ne!(moved, built, "the moving tag points at the new build");

    let third = build_commit(&stack, dir.path(), &repo, "bbbb2222", &args);
    assert_eq!(third.code, Some(0), "{third}");
    assert!(third.stdout.contains("built from bbbb2222: nothing to build or push"), "{third}");
    assert!(!third.stdout.contains("::group::Build"), "{third}");
    assert_eq!(digest(&stack, &repo, "latest").await, Some(moved));
}

/// In an ECR repository with immutable tags, a tag that holds another commit's image cannot move:
/// the run says so before building, and the registry keeps what it had.
#[tokio::test]
async fn an_immutable_tag_holding_another_commits_image_is_refused() {
    let stack = stack().await;
    let repo = unique("bk-immutable");
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk().await);
    ecr.create_repository()
        .repository_name(&repo)
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {}\nCOPY source.txt /source.txt\n", busybox_base());
    write_context(dir.path(), &[("Dockerfile", &dockerfile), ("source.txt", "one\n")]);
    let first = build_commit(&stack, dir.path(), &repo, "aaaa1111", &["--tags", "v1"]);
    assert_eq!(first.code, Some(0), "{first}");
    let before = digest(&stack, &repo, "v1").await;
    let second = build_commit(&stack, dir.path(), &repo, "bbbb2222", &["--tags", "v1"]);
    assert_eq!(second.code, Some(1), "{second}");
    assert!(second.stdout.contains("has immutable tags, so it cannot move"), "{second}");
    assert!(!second.stdout.contains("::group::Build"), "nothing was built:\n{second}");
    assert_eq!(digest(&stack, &repo, "v1").await, before);
}
