//! The demo app's routes and knobs, through Rocket's local client.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

use demo_app::{Settings, rocket};
use rocket::http::Status;
use rocket::local::blocking::Client;

fn settings(vars: &[(&str, &str)]) -> Settings {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::from_env(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
}

fn client(vars: &[(&str, &str)]) -> Client {
    Client::tracked(rocket(settings(vars))).unwrap()
}

#[test]
fn health_is_ok_by_default() {
    let client = client(&[]);
    let response = client.get("/health").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().unwrap(), r#"{"status":"ok"}"#);
}

#[test]
fn unhealthy_knob_makes_health_answer_503() {
    let client = client(&[("HEALTHY", "false")]);
    assert_eq!(client.get("/health").dispatch().status(), Status::ServiceUnavailable);
    // The rest of the app still serves: only the health check fails.
    assert_eq!(client.get("/version").dispatch().status(), Status::Ok);
}

#[test]
fn version_reports_app_version_commit_and_host() {
    let client = client(&[("APP_VERSION", "1.2.3"), ("GIT_SHA", "abc123"), ("HOSTNAME", "task-7")]);
    let body: serde_json::Value = client.get("/version").dispatch().into_json().unwrap();
    assert_eq!(body["version"], "1.2.3");
    assert_eq!(body["commit"], "abc123");
    assert_eq!(body["host"], "task-7");
}

#[test]
fn index_is_html_and_escapes_what_it_shows() {
    let client = client(&[("APP_VERSION", "<b>2</b>"), ("GIT_SHA", "abc123")]);
    let response = client.get("/").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert!(response.content_type().unwrap().is_html());
    let body = response.into_string().unwrap();
    assert!(body.contains("&lt;b&gt;2&lt;/b&gt;"), "{body}");
    assert!(body.contains("abc123"));
}

#[test]
fn fail_rate_fails_that_fraction_of_requests_but_never_health() {
    let client = client(&[("FAIL_RATE", "0.25")]);
    let failures =
        (0..100).filter(|_| client.get("/version").dispatch().status() == Status::InternalServerError).count();
    assert_eq!(failures, 25);
    assert!((0..20).all(|_| client.get("/health").dispatch().status() == Status::Ok));
}

#[test]
fn fail_rate_one_fails_everything() {
    let client = client(&[("FAIL_RATE", "1")]);
    assert_eq!(client.get("/").dispatch().status(), Status::InternalServerError);
    assert_eq!(client.get("/version").dispatch().status(), Status::InternalServerError);
}

#[test]
fn bad_knobs_are_refused_with_the_fix() {
    let parse = |k: &str, v: &str| {
        let v = v.to_string();
        let k = k.to_string();
        Settings::from_env(move |name| (name == k).then(|| v.clone()))
    };
    assert!(parse("FAIL_RATE", "1.5").unwrap_err().contains("from 0 to 1"));
    assert!(parse("FAIL_RATE", "lots").unwrap_err().contains("FAIL_RATE"));
    assert!(parse("HEALTHY", "maybe").unwrap_err().contains("true or false"));
    assert!(parse("PORT", "http").unwrap_err().contains("PORT"));
    assert_eq!(parse("PORT", "9000").unwrap().port, 9000);
}

#[test]
fn latency_knob_delays_answers_but_not_health() {
    let client = client(&[("LATENCY_MS", "150")]);
    let started = std::time::Instant::now();
    assert_eq!(client.get("/version").dispatch().status(), Status::Ok);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150), "{:?}", started.elapsed());
    let started = std::time::Instant::now();
    assert_eq!(client.get("/health").dispatch().status(), Status::Ok);
    assert!(started.elapsed() < std::time::Duration::from_millis(150), "{:?}", started.elapsed());
}

#[test]
fn bad_latency_crash_and_memory_knobs_are_refused_with_the_fix() {
    let parse = |k: &str, v: &str| Settings::from_env(|name| (name == k).then(|| v.to_string()));
    assert!(parse("LATENCY_MS", "fast").unwrap_err().contains("whole milliseconds"));
    assert!(parse("CRASH_ON_START", "0").unwrap_err().contains("1 to 255"));
    assert_eq!(parse("CRASH_ON_START", "3").unwrap().crash_on_start, Some(3));
    assert_eq!(parse("ALLOCATE_MB", "64").unwrap().allocate_mb, 64);
    assert!(parse("ALLOCATE_MB", "4096").unwrap_err().contains("whole MiB from 0 to 1024"));
}

#[test]
fn crash_when_set_crashes_only_once_the_named_variable_is_set() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        Settings::from_env(move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    };
    assert_eq!(env(&[("CRASH_WHEN_SET", "FEATURE_X")]).unwrap().crash_on_start, None);
    assert_eq!(env(&[("CRASH_WHEN_SET", "FEATURE_X"), ("FEATURE_X", "on")]).unwrap().crash_on_start, Some(1));
    assert_eq!(env(&[("FEATURE_X", "on")]).unwrap().crash_on_start, None);
}
