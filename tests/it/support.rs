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
    /// The demo app's image by digest in the local registry (scripts/demo-image): what the seeded
    /// services run, and a release that really starts.
    pub image: String,
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

/// The runner's bearer for its token endpoint, and the OIDC token it hands out (both secrets).
pub const OIDC_BEARER: &str = "runner-bearer-7f3a9c";
pub const OIDC_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9yZy9hcHAifQ.c2lnbmF0dXJlLXZhbHVl";

/// The runner's OIDC token endpoint, answering `times` requests made as GitHub documents them (GET
/// with the runner's bearer, `api-version=2.0` and the audience) with a token.
pub async fn oidc_token_server(audience: &str, times: impl Into<wiremock::Times>) -> wiremock::MockServer {
    use wiremock::matchers::{header, method, path, query_param};
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("api-version", "2.0"))
        .and(query_param("audience", audience))
        .and(header("authorization", format!("Bearer {OIDC_BEARER}").as_str()))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({ "count": 1, "value": OIDC_JWT })),
        )
        .expect(times)
        .mount(&server)
        .await;
    server
}

/// The action's outputs, in the order a deploy writes them (and action.yml declares them).
pub const OUTPUTS: [&str; 7] = [
    "image-uri",
    "image-digest",
    "task-definition-arn",
    "previous-task-definition-arn",
    "services",
    "status",
    "comment-url",
];

/// The outputs only a deploy paused for approval writes besides those (action.yml declares them too).
pub const PAUSED_OUTPUTS: [&str; 3] = ["service-deployment-arn", "hook-id", "paused-until"];

/// The output only a dry run writes (besides `status`).
pub const DRY_RUN_OUTPUTS: [&str; 1] = ["plan"];

/// The stack, with the emulator reset to empty, held for this test alone.
pub async fn stack() -> Stack {
    let guard = STACK_LOCK.lock().await;
    let stack = Stack {
        endpoint: env("AWS_ENDPOINT_URL"),
        region: env("AWS_REGION"),
        registry: env("REGISTRY"),
        image: env("DEMO_IMAGE"),
        python: env("STACK_PYTHON"),
        _guard: guard,
    };
    let reset = reqwest::Client::new().post(format!("{}/moto-api/reset", stack.endpoint)).send().await;
    assert!(reset.is_ok_and(|r| r.status().is_success()), "could not reset moto at {}", stack.endpoint);
    // A test that ended with IAM enforcement on (a panic) leaves it off for the next one.
    stack.enforce_iam(false).await;
    stack
}

impl Stack {
    /// Runs scripts/tools/seed.py with `args`; returns the resources it created.
    pub fn seed(&self, args: &[&str]) -> Value {
        let out = Command::new(&self.python)
            .arg(repo_root().join("scripts/tools/seed.py"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("DEMO_IMAGE", &self.image)
            .output()
            .expect("run scripts/tools/seed.py");
        assert!(out.status.success(), "seed failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("seed prints JSON")
    }

    /// The emulator's whole state, every service and region, less what the data plane writes by
    /// itself (container output to CloudWatch Logs) and the answer objects moto counts as models
    /// (one per DescribeTargetHealth): what a deploy could change.
    pub async fn state(&self) -> Value {
        let mut state: Value =
            reqwest::get(format!("{}/moto-api/data.json", self.endpoint)).await.unwrap().json().await.unwrap();
        if let Some(all) = state.as_object_mut() {
            all.remove("logs");
        }
        if let Some(elb) = state.get_mut("elbv2").and_then(Value::as_object_mut) {
            elb.remove("FakeHealthStatus");
        }
        state
    }

    /// Turns the emulator's IAM enforcement on (every call needs an IAM user's key and a policy that
    /// allows it; scripts/localaws/iam/resources.py scopes it by resource) or off (moto's reset-auth).
    pub async fn enforce_iam(&self, on: bool) {
        let count = if on { "0" } else { "inf" };
        // text/plain: moto reads the number from the raw body, which a form body would consume.
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(count)
            .send()
            .await;
        assert!(r.is_ok_and(|r| r.status().is_success()), "could not switch IAM enforcement at {}", self.endpoint);
    }

    /// A role GitHub's OIDC provider may assume, with exactly `policy` (made while enforcement is
    /// off); returns its ARN.
    pub fn iam_role(&self, name: &str, policy: &Value) -> String {
        let role = self.iam_identity("iam_role", name, policy);
        role["arn"].as_str().unwrap().to_string()
    }

    /// An IAM user with exactly `policy` (made while enforcement is off); returns its access key
    /// (id, secret), for a run with ambient credentials.
    pub fn iam_user(&self, name: &str, policy: &Value) -> (String, String) {
        let key = self.iam_identity("iam_user", name, policy);
        (key["id"].as_str().unwrap().to_string(), key["secret"].as_str().unwrap().to_string())
    }

    /// Runs scripts/tools/`tool`.py for an identity `name` with `policy`; what it prints.
    fn iam_identity(&self, tool: &str, name: &str, policy: &Value) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.json");
        std::fs::write(&file, policy.to_string()).unwrap();
        let out = Command::new(&self.python)
            .arg(repo_root().join(format!("scripts/tools/{tool}.py")))
            .arg(name)
            .arg(&file)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .unwrap_or_else(|e| panic!("run scripts/tools/{tool}.py: {e}"));
        assert!(out.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{tool} prints JSON: {e}"))
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

    /// The address the stack's load balancer serves a listener on (always 127.0.0.1).
    pub async fn listener_url(&self, listener_arn: &str) -> String {
        let all: Value =
            reqwest::get(format!("{}/_stack/listeners", self.endpoint)).await.unwrap().json().await.unwrap();
        let url = all[listener_arn].as_str().unwrap_or_else(|| panic!("no listener {listener_arn} in {all}"));
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        url.to_string()
    }

    /// Throttles `rate` of the calls to `service` (its signing name), or to one operation of it.
    pub async fn throttle(&self, service: &str, operation: Option<&str>, rate: f64) {
        let body = serde_json::json!({ "service": service, "operation": operation, "rate": rate });
        let r =
            reqwest::Client::new().post(format!("{}/_stack/faults", self.endpoint)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    }

    /// Throttles each call to `service` with probability `rate` (a seeded coin: bursts happen, as on
    /// AWS); rate 0 ends it.
    pub async fn throttle_randomly(&self, service: &str, rate: f64, seed: u64) {
        let body = serde_json::json!({ "service": service, "rate": rate, "random": true, "seed": seed });
        let r =
            reqwest::Client::new().post(format!("{}/_stack/faults", self.endpoint)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    }

    /// How many calls the stack's faults have throttled since the last reset.
    pub async fn throttled_calls(&self) -> u64 {
        let all: Value = reqwest::get(format!("{}/_stack/faults", self.endpoint)).await.unwrap().json().await.unwrap();
        all["throttled"].as_u64().unwrap_or_else(|| panic!("no count in {all}"))
    }

    /// Throttles exactly the next `count` calls to one operation of `service`.
    pub async fn throttle_next(&self, service: &str, operation: &str, count: u32) {
        let body = serde_json::json!({ "service": service, "operation": operation, "count": count });
        let r =
            reqwest::Client::new().post(format!("{}/_stack/faults", self.endpoint)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    }

    /// Arms a fault that starts once the next call to `trigger` of `service` went through: exactly
    /// `count` calls to `operation` throttled then, or every one of them with `count` None.
    pub async fn throttle_after(&self, service: &str, trigger: &str, operation: &str, count: Option<u32>) {
        let body = serde_json::json!({
            "service": service, "operation": operation, "after": trigger, "rate": 1.0, "count": count,
        });
        let r =
            reqwest::Client::new().post(format!("{}/_stack/faults", self.endpoint)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    }

    /// Like `throttle_after`, but an outage: the calls are answered 503 ServiceUnavailable.
    pub async fn unavailable_after(&self, service: &str, trigger: &str, operation: &str, count: u32) {
        let body = serde_json::json!({
            "service": service, "operation": operation, "after": trigger, "rate": 1.0, "count": count, "error": "unavailable",
        });
        let r =
            reqwest::Client::new().post(format!("{}/_stack/faults", self.endpoint)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    }

    /// Kills the containers of a service's running tasks, as a crash would.
    pub async fn kill_tasks(&self, cluster: &str, service: &str) -> usize {
        let ecs = self.ecs().await;
        let list = ecs.list_tasks().cluster(cluster).service_name(service).send().await.unwrap();
        let mut killed = 0;
        for arn in list.task_arns() {
            let ids = Command::new("docker")
                .args(["ps", "-q", "--filter", &format!("label=ecs-deploy-action.task={arn}")])
                .output()
                .unwrap();
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let kill = Command::new("docker").args(["kill", id]).output().unwrap();
                let err = String::from_utf8_lossy(&kill.stderr).to_lowercase();
                if kill.status.success() {
                    killed += 1;
                } else if !(err.contains("is not running") || err.contains("no such container")) {
                    // Between `docker ps` and the kill the container may end on its own (the action's
                    // abort stops the canary while this loops): that one is not a crash we caused.
                    panic!("docker kill {id}: {err}");
                }
            }
        }
        killed
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
        // The tests read the run's own call counts and timings (`verbose`); `quiet` takes them away.
        command.env("INPUT_VERBOSE", "true");
        // No profile files or instance metadata: only what the test gives.
        command
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        Action { command }
    }

    /// The run as a user sees it by default: no timings or call counts.
    pub fn quiet(&mut self) -> &mut Self {
        self.command.env_remove("INPUT_VERBOSE");
        self
    }

    /// The action's own retry settings rather than the tests' single attempt.
    pub fn default_retries(&mut self) -> &mut Self {
        self.command.env_remove("AWS_MAX_ATTEMPTS");
        self
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(&mut self, key: &str) -> &mut Self {
        self.command.env_remove(key);
        self
    }

    /// Runs as a GitHub Actions job with `id-token: write` does: the runner's token endpoint is
    /// `server` (see `oidc_token_server`), and the run assumes `role` with the token.
    pub fn with_oidc(&mut self, server: &wiremock::MockServer, role: &str) -> &mut Self {
        self.env("GITHUB_ACTIONS", "true")
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/token?api-version=2.0", server.uri()))
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", OIDC_BEARER)
            .input("role-to-assume", role)
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

/// Steady requests to a listener (loopback only), one every 10 ms, bounded in count and time, until
/// stopped; what a service's users would see during a deploy.
pub struct Traffic {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<Vec<u16>>,
}

impl Traffic {
    pub fn start(url: String) -> Traffic {
        assert!(url.starts_with("http://127.0.0.1:"), "traffic goes to loopback only: {url}");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
            let mut statuses = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed)
                && statuses.len() < 20_000
                && std::time::Instant::now() < deadline
            {
                let status = match client.get(&url).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                statuses.push(status);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            statuses
        });
        Traffic { stop, handle }
    }

    /// Stops the requests; returns every answer's status (0 when nothing answered), in order.
    pub async fn stop(self) -> Vec<u16> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.await.unwrap()
    }
}

/// Where two of the emulator's states differ, as `path: before → after` lines (empty when equal):
/// what an assertion on the whole state prints instead of both states.
pub fn differences(before: &Value, after: &Value) -> String {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    walk(
                        &format!("{path}/{k}"),
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), p, q, out);
                }
            }
            _ if a != b => out.push(format!("{path}: {} → {}", short(a), short(b))),
            _ => {}
        }
    }
    fn short(v: &Value) -> String {
        let t = v.to_string();
        if t.len() > 300 { format!("{}…", &t[..300]) } else { t }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out.join("\n")
}

/// What setup and previews may change, read back through the API (moto's state dump keeps deleted
/// objects): target groups with their attributes, the listener's actions and rules, the cluster's
/// services, the alarms.
pub async fn read_back(stack: &Stack, listener: &str) -> serde_json::Value {
    let sdk = stack.sdk().await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let mut tgs = Vec::new();
    for t in elb.describe_target_groups().send().await.unwrap().target_groups() {
        let arn = t.target_group_arn().unwrap();
        let attrs = elb.describe_target_group_attributes().target_group_arn(arn).send().await.unwrap();
        tgs.push(serde_json::json!([arn, t.load_balancer_arns(), format!("{:?}", attrs.attributes())]));
    }
    let listeners = elb.describe_listeners().listener_arns(listener).send().await.unwrap();
    let actions = format!("{:?}", listeners.listeners()[0].default_actions());
    let rules = elb.describe_rules().listener_arn(listener).send().await.unwrap();
    let rules: Vec<String> = rules.rules().iter().map(|r| format!("{:?} {:?}", r.rule_arn(), r.actions())).collect();
    let ecs = stack.ecs().await;
    let arns = ecs.list_services().cluster("demo").send().await.unwrap().service_arns().to_vec();
    let mut services = Vec::new();
    if !arns.is_empty() {
        let described = ecs.describe_services().cluster("demo").set_services(Some(arns)).send().await.unwrap();
        // A deleted service drains its tasks before it is gone: it is no longer there for a user.
        for svc in described.services().iter().filter(|s| s.status() == Some("ACTIVE")) {
            services.push(serde_json::json!([
                svc.service_name(),
                svc.task_definition(),
                svc.desired_count(),
                format!("{:?}", svc.load_balancers())
            ]));
        }
    }
    let alarms = aws_sdk_cloudwatch::Client::new(&sdk).describe_alarms().send().await.unwrap();
    let alarms: Vec<_> =
        alarms.metric_alarms().iter().map(|a| a.alarm_name().unwrap_or_default().to_string()).collect();
    serde_json::json!({"target_groups": tgs, "actions": actions, "rules": rules, "services": services, "alarms": alarms})
}
