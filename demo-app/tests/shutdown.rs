//! The built binary: it serves, and on SIGTERM (what ECS sends) it stops gracefully with exit 0.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn serves_then_stops_gracefully_on_sigterm() {
    let port = free_port();
    let mut app = Command::new(env!("CARGO_BIN_EXE_demo-app"))
        .env("PORT", port.to_string())
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Some(answer) = get(port, "/health") {
            break answer;
        }
        assert!(Instant::now() < deadline, "the app never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(Command::new("kill").args(["-TERM", &app.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = app.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = app.kill();
            panic!("the app did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status:?}");
}

#[test]
fn refuses_to_start_with_a_bad_knob() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo-app")).env("FAIL_RATE", "2").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAIL_RATE=\"2\" is not a fraction"));
}

#[test]
fn crash_on_start_prints_its_lines_and_exits_with_that_code() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo-app")).env("CRASH_ON_START", "3").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    // One stream, in order: the engine copies stdout and stderr apart, and could reorder lines split
    // across them.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (connecting, fatal) = (stderr.find("connecting to the database"), stderr.find("exiting with code 3"));
    assert!(connecting.is_some() && fatal.is_some() && connecting < fatal, "{stderr}");
}

#[test]
fn rocket_s_own_variables_choose_the_address_and_port_and_requests_are_logged() {
    let port = free_port();
    let mut app = Command::new(env!("CARGO_BIN_EXE_demo-app"))
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(port, "/version").is_none() || get(port, "/health").is_none() {
        assert!(Instant::now() < deadline, "the app never answered on ROCKET_PORT {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Command::new("kill").args(["-TERM", &app.id().to_string()]).status().unwrap().success());
    let mut log = String::new();
    app.stdout.take().unwrap().read_to_string(&mut log).unwrap();
    app.wait().unwrap();
    assert!(
        log.contains(&format!("listening on http://127.0.0.1:{port}")),
        "the launch line names the address:\n{log}"
    );
    assert!(log.contains("GET /version 200"), "each request is logged:\n{log}");
    assert!(!log.contains("/health"), "health checks are not:\n{log}");
}
