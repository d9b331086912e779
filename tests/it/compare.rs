//! The canary judged against the stable version over the same window, on the stack's real traffic:
//! a service-wide error rate does not fail a release that matches it, a release worse than its
//! baseline is rolled back, latency is compared the same way, and both sides' numbers are the
//! evidence in the summary.
//!
//! The rates are higher than a real service's (4% rather than 1%) so that a few hundred requests
//! decide beyond chance: the demo app fails each request at random with FAIL_RATE.

use crate::support::{Run, Stack, Traffic, s, stack};

struct Setup {
    stack: Stack,
    seeded: serde_json::Value,
    url: String,
}

async fn setup(stable_env: &str) -> Setup {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--desired", "2", "--env", stable_env]);
    let url = stack.listener_url(s(&seeded, "listener_arn")).await;
    Setup { stack, seeded, url }
}

impl Setup {
    /// A canary of a release with `release_env`, under steady traffic from `loops` request loops.
    async fn canary(&self, release_env: &str, gates: &[&str], loops: usize) -> (Run, String) {
        let traffic: Vec<Traffic> = (0..loops).map(|_| Traffic::start(format!("{}/version", self.url))).collect();
        let dir = tempfile::tempdir().unwrap();
        let summary = dir.path().join("summary.md");
        let run = Run::from(
            self.stack
                .action()
                .env("GITHUB_STEP_SUMMARY", &summary)
                .args(["--aws-region", &self.stack.region, "--image", &self.stack.image, "--cluster", "demo"])
                .args(["--service", "web", "--strategy", "canary", "--listener-arn", s(&self.seeded, "listener_arn")])
                .args(["--canary-steps", "50%:6s, 100%:3s", "--check-interval", "1s"])
                .args(["--environment-variables", release_env])
                .args(gates)
                .spawn()
                .wait_with_output()
                .unwrap(),
        );
        for t in traffic {
            t.stop().await;
        }
        (run, std::fs::read_to_string(summary).unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rates_are_judged_against_the_stable_versions_over_the_same_window() {
    let s = setup("FAIL_RATE=0.04").await;
    // Both versions at 4%: against stable it promotes, where an absolute 2% rolls it back.
    let relative = ["--max-error-rate", "stable + 5%", "--min-requests", "100"];
    let (run, summary) = s.canary("FAIL_RATE=0.04", &relative, 2).await;
    assert_eq!(run.code, Some(0), "the same rate as stable is no regression:\n{run}");
    assert!(summary.contains("(stable "), "both sides are the evidence in the summary:\n{summary}");
    assert!(run.stdout.contains(", since the first step)"), "at 100% the stable baseline is the run's:\n{run}");
    let (run, _) = s.canary("FAIL_RATE=0.04", &["--max-error-rate", "2%", "--min-requests", "100"], 2).await;
    assert_eq!(run.code, Some(1), "an absolute 2% rolls the same release back:\n{run}");
    // A release at 20% against a stable at 4%: rolled back, with both sides' numbers.
    let (run, summary) = s.canary("FAIL_RATE=0.2", &relative, 2).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("error-rate gate failed: "), "{run}");
    assert!(run.stdout.contains("; limit stable + 5% = "), "{run}");
    assert!(summary.contains("error-rate ") && summary.contains("(stable "), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_canary_is_rolled_back_against_stable_and_the_same_latency_passes() {
    let s = setup("APP_ENV=demo").await;
    let gate = ["--max-latency", "p99 < stable × 1.3", "--min-requests", "10"];
    let (run, summary) = s.canary("LATENCY_MS=300", &gate, 4).await;
    assert_eq!(run.code, Some(1), "300 ms against a few ms:\n{run}");
    assert!(run.stdout.contains("latency gate failed: p99 "), "{run}");
    assert!(run.stdout.contains("; limit stable × 1.3 = "), "{run}");
    assert!(summary.contains("latency p99 ") && summary.contains("(stable "), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_latency_on_both_versions_passes() {
    let s = setup("LATENCY_MS=300").await;
    let gate = ["--max-latency", "p99 < stable × 1.3", "--min-requests", "10"];
    let (run, _) = s.canary("LATENCY_MS=300", &gate, 4).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("latency p99 3"), "{run}");
}
