//! How long each stage of a run took, and what it deployed, for its last lines and the benchmarks.

use std::time::Duration;

use tokio::time::Instant;

use crate::clock;

/// How long each stage took, for the run's last lines (and the benchmarks).
pub(crate) struct Timings {
    start: Instant,
    last: Instant,
    stages: Vec<(&'static str, Duration)>,
    /// What a deploy that succeeded rolled out (`prod/web → web:8, canary 10%:2m, 100%`).
    deployed: Option<String>,
}

impl Timings {
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Timings { start: now, last: now, stages: Vec::new(), deployed: None }
    }

    pub(super) fn deployed(&mut self, what: String) {
        self.deployed = Some(what);
    }

    /// The run's result line (`prod/web → web:8, rolling, 2m10s`), when it deployed.
    pub(super) fn result(&self) -> Option<String> {
        let took = crate::config::duration::format(Duration::from_secs(self.start.elapsed().as_secs().max(1)));
        self.deployed.as_ref().map(|what| format!("{what}, {took}"))
    }

    pub(super) fn mark(&mut self, stage: &'static str) {
        let now = Instant::now();
        self.stages.push((stage, now - self.last));
        self.last = now;
    }

    /// `took 14.2s: credentials 0.1s, plan 0.2s, …; sleeping 10.5s, working 3.7s`
    pub(super) fn line(&self) -> String {
        let secs = |d: Duration| format!("{:.3}s", d.as_secs_f64());
        let total = self.start.elapsed();
        let waited = clock::slept();
        let stages: Vec<String> = self.stages.iter().map(|(name, d)| format!("{name} {}", secs(*d))).collect();
        format!(
            "took {}: {}; sleeping between polls and checks {}, working {}",
            secs(total),
            stages.join(", "),
            secs(waited),
            secs(total.saturating_sub(waited))
        )
    }
}
