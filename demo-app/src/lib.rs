//! A small web app for ecs-deploy-action to deploy in its examples and tests, with knobs that make a
//! canary fail on purpose: `FAIL_RATE` (a fraction of requests answered 500), `HEALTHY=false`
//! (`/health` answers 503), `LATENCY_MS` (added to every answer but `/health`) and `CRASH_ON_START`
//! (print a few lines, then exit with that code instead of serving); `CRASH_WHEN_SET=NAME` does the
//! same with code 1 once the variable `NAME` is set (one of several services that cannot take a
//! release's new setting); `ALLOCATE_MB` holds that much memory from the start (a release that needs
//! more than its container may use is killed by the kernel); `PRINT_ENV_ON_CRASH=1` prints every
//! environment variable before such a crash, as a careless app does.

use std::sync::atomic::{AtomicU64, Ordering};

use rocket::config::{Shutdown, Sig};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Status;
use rocket::response::content::RawHtml;
use rocket::serde::json::{Json, Value, json};
use rocket::{Build, Request, Response, Rocket, State, get, routes};

/// What the app reads from its environment, parsed once at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub version: String,
    pub commit: String,
    pub host: String,
    pub port: u16,
    /// Fraction (0..=1) of requests, other than `/health`, answered with 500.
    pub fail_rate: f64,
    pub healthy: bool,
    /// Milliseconds added to every answer but `/health`'s.
    pub latency_ms: u64,
    /// Exit with this code at start, after a few lines of output, instead of serving.
    pub crash_on_start: Option<u8>,
    /// MiB written and held from the start, at most `MAX_ALLOCATE_MB`.
    pub allocate_mb: usize,
}

/// The most `ALLOCATE_MB` may ask for: enough to exceed any small container's memory, bounded so
/// that a mistake cannot take the machine's memory.
pub const MAX_ALLOCATE_MB: usize = 1024;

impl Settings {
    /// Reads `APP_VERSION`, `GIT_SHA`, `HOSTNAME`, `PORT`, `FAIL_RATE`, `HEALTHY`, `LATENCY_MS`,
    /// `CRASH_ON_START`, `CRASH_WHEN_SET` and `ALLOCATE_MB` through `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let fail_rate = match non_empty("FAIL_RATE") {
            None => 0.0,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => rate,
                _ => {
                    return Err(format!(
                        "FAIL_RATE={raw:?} is not a fraction: use a number from 0 to 1, e.g. FAIL_RATE=0.2"
                    ));
                }
            },
        };
        let healthy = match non_empty("HEALTHY").map(|v| v.trim().to_ascii_lowercase()) {
            None => true,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            Some(v) => return Err(format!("HEALTHY={v:?}: use true or false")),
        };
        let port = match non_empty("PORT") {
            None => 8080,
            Some(raw) => raw.trim().parse().map_err(|_| format!("PORT={raw:?} is not a port number (1-65535)"))?,
        };
        let latency_ms = match non_empty("LATENCY_MS") {
            None => 0,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(ms) if ms <= 60_000 => ms,
                _ => {
                    return Err(format!(
                        "LATENCY_MS={raw:?}: use whole milliseconds from 0 to 60000, e.g. LATENCY_MS=300"
                    ));
                }
            },
        };
        let crash_on_start = match non_empty("CRASH_ON_START") {
            None => None,
            Some(raw) => match raw.trim().parse::<u8>() {
                Ok(code) if code > 0 => Some(code),
                _ => return Err(format!("CRASH_ON_START={raw:?}: use the exit code to crash with, 1 to 255")),
            },
        };
        let allocate_mb = match non_empty("ALLOCATE_MB") {
            None => 0,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(mb) if mb <= MAX_ALLOCATE_MB => mb,
                _ => return Err(format!("ALLOCATE_MB={raw:?}: use whole MiB from 0 to {MAX_ALLOCATE_MB}")),
            },
        };
        // Several services from one image: only the one seeded with this knob crashes on the setting.
        let crash_on_start = crash_on_start
            .or_else(|| non_empty("CRASH_WHEN_SET").filter(|name| non_empty(name.trim()).is_some()).map(|_| 1));
        Ok(Settings {
            version: non_empty("APP_VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
            commit: non_empty("GIT_SHA").unwrap_or_else(|| "unknown".into()),
            host: non_empty("HOSTNAME")
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|| "unknown".into()),
            port,
            fail_rate,
            healthy,
            latency_ms,
            crash_on_start,
            allocate_mb,
        })
    }
}

#[get("/")]
fn index(settings: &State<Settings>) -> RawHtml<String> {
    RawHtml(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>demo-app {v}</title></head>\n\
         <body><h1>demo-app</h1>\n<dl><dt>version</dt><dd>{v}</dd><dt>commit</dt><dd>{c}</dd>\
         <dt>host</dt><dd>{h}</dd></dl></body></html>\n",
        v = escape(&settings.version),
        c = escape(&settings.commit),
        h = escape(&settings.host),
    ))
}

#[get("/health")]
fn health(settings: &State<Settings>) -> (Status, Json<Value>) {
    if settings.healthy {
        (Status::Ok, Json(json!({ "status": "ok" })))
    } else {
        (Status::ServiceUnavailable, Json(json!({ "status": "unhealthy", "reason": "HEALTHY=false" })))
    }
}

#[get("/version")]
fn version(settings: &State<Settings>) -> Json<Value> {
    Json(json!({ "version": settings.version, "commit": settings.commit, "host": settings.host }))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Answers a steady fraction of requests with 500. Deterministic (an accumulator, not a coin), so
/// `FAIL_RATE=0.5` fails exactly every second request and tests can count on it.
struct FailRate {
    rate: f64,
    served: AtomicU64,
}

#[rocket::async_trait]
impl Fairing for FailRate {
    fn info(&self) -> Info {
        Info { name: "FAIL_RATE", kind: Kind::Response }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        if self.rate <= 0.0 || request.uri().path() == "/health" {
            return;
        }
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let due = (n as f64 * self.rate).floor() > ((n - 1) as f64 * self.rate).floor();
        if due {
            let body = r#"{"error":"injected failure (FAIL_RATE)"}"#;
            response.set_status(Status::InternalServerError);
            response.set_header(rocket::http::ContentType::JSON);
            response.set_sized_body(body.len(), std::io::Cursor::new(body));
        }
    }
}

/// Delays every answer but `/health`'s by `LATENCY_MS`, as a slow dependency would.
struct Latency(u64);

#[rocket::async_trait]
impl Fairing for Latency {
    fn info(&self) -> Info {
        Info { name: "LATENCY_MS", kind: Kind::Response }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, _response: &mut Response<'r>) {
        if self.0 > 0 && request.uri().path() != "/health" {
            rocket::tokio::time::sleep(std::time::Duration::from_millis(self.0)).await;
        }
    }
}

/// One line at start and one per request, in release builds too, so that a task's last lines say
/// what it did. Health checks are not logged: every few seconds from each load balancer, they would
/// push the lines that explain a failure out of sight.
struct AccessLog;

#[rocket::async_trait]
impl Fairing for AccessLog {
    fn info(&self) -> Info {
        Info { name: "access log", kind: Kind::Liftoff | Kind::Response }
    }

    async fn on_liftoff(&self, rocket: &Rocket<rocket::Orbit>) {
        let c = rocket.config();
        println!("demo-app {} listening on http://{}:{}", env!("CARGO_PKG_VERSION"), c.address, c.port);
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        if request.uri().path() != "/health" {
            println!("{} {} {}", request.method(), request.uri(), response.status().code);
        }
    }
}

/// The app, ready to launch (or to drive with Rocket's local client in tests).
pub fn rocket(settings: Settings) -> Rocket<Build> {
    let figment = rocket::Config::figment()
        .merge(("address", "0.0.0.0"))
        .merge(("port", settings.port))
        .merge(("ident", "demo-app"))
        // ECS sends SIGTERM, then SIGKILL after the stop timeout (30 s by default): finish in-flight
        // requests within a few seconds and exit 0.
        .merge((
            "shutdown",
            Shutdown {
                ctrlc: true,
                signals: [Sig::Term].into_iter().collect(),
                grace: 5,
                mercy: 5,
                ..Shutdown::default()
            },
        ))
        // Rocket's own lines only when they matter; the app's own access log says the rest.
        .merge(("log_level", rocket::config::LogLevel::Critical))
        // Rocket's own variables win over the defaults above (ROCKET_ADDRESS, ROCKET_PORT,
        // ROCKET_LOG_LEVEL), as Rocket's documentation tells users.
        .merge(rocket::figment::providers::Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global());
    rocket::custom(figment)
        .attach(AccessLog)
        .attach(FailRate { rate: settings.fail_rate, served: AtomicU64::new(0) })
        .attach(Latency(settings.latency_ms))
        .manage(settings)
        .mount("/", routes![index, health, version])
}
