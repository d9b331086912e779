//! What every integration test needs: the local stack's addresses, one test at a time on the shared
//! emulator, fixtures seeded like a user's own setup, and the action run as a process.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

/// Tests that use the emulator's state run one at a time: the state is global to the server.
static STACK_LOCK: Mutex<()> = Mutex::const_new(());

pub struct Stack {
    pub endpoint: String,
    pub region: String,
    pub registry: String,
    python: String,
    _guard: MutexGuard<'static, ()>,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need the local stack. Run scripts/test, or eval \"$(scripts/stack up)\" first")
    })
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The stack, with the emulator reset to empty, held for this test alone.
pub async fn stack() -> Stack {
    let guard = STACK_LOCK.lock().await;
    let stack = Stack {
        endpoint: env("AWS_ENDPOINT_URL"),
        region: env("AWS_REGION"),
        registry: env("REGISTRY"),
        python: env("STACK_PYTHON"),
        _guard: guard,
    };
    let reset = reqwest::Client::new().post(format!("{}/moto-api/reset", stack.endpoint)).send().await;
    assert!(reset.is_ok_and(|r| r.status().is_success()), "could not reset moto at {}", stack.endpoint);
    stack
}

impl Stack {
    /// Runs scripts/seed.py with `args`; returns the resources it created.
    pub fn seed(&self, args: &[&str]) -> Value {
        let out = Command::new(&self.python)
            .arg(repo_root().join("scripts/seed.py"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .expect("run scripts/seed.py");
        assert!(out.status.success(), "seed failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("seed prints JSON")
    }

    /// The emulator's whole state, every service and region.
    pub async fn state(&self) -> Value {
        reqwest::get(format!("{}/moto-api/data.json", self.endpoint)).await.unwrap().json().await.unwrap()
    }

    /// The SDK configuration for clients on the emulator, for assertions and changes mid-run.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    pub async fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk().await)
    }

    /// Marks a target group's targets unhealthy (or healthy again) in the emulator.
    pub async fn target_group_health(&self, arn: &str, healthy: bool) {
        let body = serde_json::json!({ "targetGroupArn": arn, "healthy": healthy });
        let r = reqwest::Client::new()
            .post(format!("{}/_stack/target-group/health", self.endpoint))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    }

    /// Sets how the emulator's next rollout of `service` goes: `fail` (circuit breaker) or `stall`.
    pub async fn next_rollout(&self, cluster: &str, service: &str, mode: &str) {
        let body = serde_json::json!({ "cluster": cluster, "service": service, "mode": mode });
        let r = reqwest::Client::new()
            .post(format!("{}/_stack/ecs/next-rollout", self.endpoint))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    }

    /// The action as a process, pointed at the stack, with `args` as flags.
    pub fn action(&self) -> Action {
        let mut action = Action::new();
        action
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            // Waits are driven by a short poll interval, never by fixed sleeps.
            .env("ECS_DEPLOY_POLL_INTERVAL", "50ms");
        action
    }
}

/// A run of the `ecs-deploy-action` binary with a clean environment.
pub struct Action {
    command: Command,
}

impl Action {
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ecs-deploy-action"));
        command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("AWS_MAX_ATTEMPTS", "1");
        // No profile files or instance metadata: only what the test gives.
        command
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        Action { command }
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.command.env(key, value);
        self
    }

    /// Sets an action input the way the runner does: `INPUT_<NAME>` with the hyphens kept.
    pub fn input(&mut self, name: &str, value: &str) -> &mut Self {
        self.command.env(format!("INPUT_{}", name.to_ascii_uppercase()), value);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Starts the run in the background, output captured.
    pub fn spawn(&mut self) -> std::process::Child {
        self.command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start ecs-deploy-action")
    }

    pub fn run(&mut self) -> Run {
        let output = self.command.output().expect("run ecs-deploy-action");
        Run::from(output)
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// What the run wrote to `$GITHUB_OUTPUT`, when the test gave it one.
    pub outputs: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            outputs: String::new(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A JSON string field of a seed result.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("seed result has no {key}: {v}"))
}

/// A name no other test (or earlier run against the same registry) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

/// One output from a run's `$GITHUB_OUTPUT` file (`name<<DELIM` … `DELIM`).
pub fn output(run: &Run, name: &str) -> String {
    let mut lines = run.outputs.lines();
    while let Some(line) = lines.next() {
        if let Some(delimiter) = line.strip_prefix(&format!("{name}<<")) {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            return value.join("\n");
        }
    }
    panic!("no output `{name}` in:\n{}", run.outputs)
}
