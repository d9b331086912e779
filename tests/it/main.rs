//! Integration tests against the local stack (scripts/stack): real Docker engine, real registry,
//! moto for AWS. One binary, so the build happens once; tests that touch the emulator take turns.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod approval;
mod buildkit;
mod canary;
mod compare;
mod credentials;
mod dry_run;
mod fleet;
mod iam;
mod iam_enforced;
mod image;
mod inputs;
mod lease;
mod native;
mod pre_deploy;
mod preview;
mod prune;
mod report;
mod rolling;
mod schedules;
mod services;
mod setup;
mod support;
mod throttled;
