//! BuildKit's progress as a person follows it in the log: one line per step as it completes
//! (`#7 [build 3/6] RUN cargo build --release  DONE 41.2s`, `CACHED`, `ERROR: …`), the last lines
//! each step printed kept for a failure, and the count of steps and cached ones for the summary.
//! Read from the engine's `moby.buildkit.trace` messages (BuildKit's `StatusResponse`).

use std::collections::{HashMap, VecDeque};

use anyhow::Result;

use super::wire;

/// Lines of a step's own output kept for its failure.
const KEPT_LINES: usize = 20;

#[derive(Default)]
struct Step {
    number: usize,
    name: String,
    started: Option<f64>,
    cached: bool,
    done: bool,
    error: String,
    lines: VecDeque<String>,
    partial: String,
}

/// What the build's steps have said so far.
#[derive(Default)]
pub(crate) struct Steps {
    by_digest: HashMap<String, Step>,
    /// Digests of the failed steps, in order.
    failed: Vec<String>,
}

impl Steps {
    /// Takes one `StatusResponse`; returns the lines to print (steps that completed in it).
    pub(crate) fn apply(&mut self, status: &[u8]) -> Result<Vec<String>> {
        let fields = wire::fields(status)?;
        let mut lines = Vec::new();
        for vertex in wire::all(&fields, 1) {
            let v = wire::fields(vertex)?;
            let digest = wire::text(&v, 1);
            let count = self.by_digest.len();
            let step =
                self.by_digest.entry(digest.clone()).or_insert_with(|| Step { number: count + 1, ..Step::default() });
            let name = wire::text(&v, 3);
            if !name.is_empty() {
                step.name = name;
            }
            step.cached |= wire::number(&v, 4) != 0;
            if let Some(started) = wire::all(&v, 5).first() {
                step.started = Some(wire::seconds(started)?);
            }
            let error = wire::text(&v, 7);
            let completed = wire::all(&v, 6).first().map(|c| wire::seconds(c)).transpose()?;
            if let Some(completed) = completed.filter(|_| !step.done) {
                step.done = true;
                let how = if !error.is_empty() && step.name.starts_with("importing cache manifest") {
                    // No cache to import is the first build's normal: BuildKit builds on without it.
                    format!("no cache there yet ({error})")
                } else if !error.is_empty() {
                    self.failed.push(digest);
                    step.error = error;
                    format!("ERROR: {}", step.error)
                } else if step.cached {
                    "CACHED".to_string()
                } else {
                    format!("DONE {:.1}s", (completed - step.started.unwrap_or(completed)).max(0.0))
                };
                lines.push(format!("#{} {}  {how}", step.number, step.name));
            }
        }
        for log in wire::all(&fields, 3) {
            let l = wire::fields(log)?;
            if let Some(step) = self.by_digest.get_mut(&wire::text(&l, 1)) {
                step.partial.push_str(&wire::text(&l, 4));
                while let Some(end) = step.partial.find('\n') {
                    let line: String = step.partial.drain(..=end).collect();
                    step.lines.push_back(line.trim_end().to_string());
                    if step.lines.len() > KEPT_LINES {
                        step.lines.pop_front();
                    }
                }
            }
        }
        Ok(lines)
    }

    /// `(steps, of them from cache)`, counting only the Dockerfile's (`[stage n/m] …`), not BuildKit's
    /// own (`[internal] …`, the context's copy, the export).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let dockerfiles = |s: &&Step| s.done && s.name.starts_with('[') && !s.name.starts_with("[internal]");
        let mine: Vec<bool> = self.by_digest.values().filter(dockerfiles).map(|s| s.cached).collect();
        (mine.len(), mine.iter().filter(|cached| **cached).count())
    }

    /// The failed step, its error and its last lines, for the run's error.
    pub(crate) fn failure(&self) -> Option<String> {
        let step = self.by_digest.get(self.failed.first()?)?;
        let mut out = format!("#{} {}: {}", step.number, step.name, step.error);
        let mut lines: Vec<&str> = step.lines.iter().map(String::as_str).collect();
        if !step.partial.trim().is_empty() {
            lines.push(step.partial.trim_end());
        }
        if !lines.is_empty() {
            out += &format!("\nits last lines:\n{}", lines.join("\n"));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(seconds: u64) -> Vec<u8> {
        let mut t = Vec::new();
        wire::put_number(&mut t, 1, seconds);
        t
    }

    fn vertex(
        digest: &str,
        name: &str,
        cached: bool,
        started: Option<u64>,
        completed: Option<u64>,
        error: &str,
    ) -> Vec<u8> {
        let mut v = Vec::new();
        wire::put_bytes(&mut v, 1, digest.as_bytes());
        wire::put_bytes(&mut v, 3, name.as_bytes());
        if cached {
            wire::put_number(&mut v, 4, 1);
        }
        if let Some(s) = started {
            wire::put_bytes(&mut v, 5, &timestamp(s));
        }
        if let Some(c) = completed {
            wire::put_bytes(&mut v, 6, &timestamp(c));
        }
        if !error.is_empty() {
            wire::put_bytes(&mut v, 7, error.as_bytes());
        }
        v
    }

    fn status(vertices: &[Vec<u8>], logs: &[(&str, &str)]) -> Vec<u8> {
        let mut s = Vec::new();
        for v in vertices {
            wire::put_bytes(&mut s, 1, v);
        }
        for (digest, msg) in logs {
            let mut l = Vec::new();
            wire::put_bytes(&mut l, 1, digest.as_bytes());
            wire::put_bytes(&mut l, 4, msg.as_bytes());
            wire::put_bytes(&mut s, 3, &l);
        }
        s
    }

    #[test]
    fn a_line_per_step_as_it_completes_numbered_in_order_of_appearance() {
        let mut steps = Steps::default();
        let started = status(
            &[
                vertex("a", "[internal] load build definition from Dockerfile", false, Some(10), None, ""),
                vertex("b", "[2/3] RUN make", false, Some(11), None, ""),
            ],
            &[],
        );
        assert!(steps.apply(&started).unwrap().is_empty(), "nothing completed yet");
        let done = status(
            &[
                vertex("a", "", false, Some(10), Some(10), ""),
                vertex("c", "[1/3] COPY . /src", true, None, Some(11), ""),
            ],
            &[],
        );
        assert_eq!(
            steps.apply(&done).unwrap(),
            ["#1 [internal] load build definition from Dockerfile  DONE 0.0s", "#3 [1/3] COPY . /src  CACHED"]
        );
        let built = status(&[vertex("b", "[2/3] RUN make", false, Some(11), Some(52), "")], &[]);
        assert_eq!(steps.apply(&built).unwrap(), ["#2 [2/3] RUN make  DONE 41.0s"]);
        assert!(steps.apply(&built).unwrap().is_empty(), "said once");
        assert_eq!(steps.counts(), (2, 1), "the Dockerfile's steps, one from cache");
        assert!(steps.failure().is_none());
        // A cache that is not in the registry yet is no failure of the build.
        let no_cache = status(
            &[vertex(
                "d",
                "importing cache manifest from ecr/app:buildcache",
                false,
                Some(12),
                Some(12),
                "ecr/app:buildcache: not found",
            )],
            &[],
        );
        let lines = steps.apply(&no_cache).unwrap();
        assert_eq!(
            lines,
            ["#4 importing cache manifest from ecr/app:buildcache  no cache there yet (ecr/app:buildcache: not found)"]
        );
        assert!(steps.failure().is_none());
    }

    #[test]
    fn a_failed_step_is_named_with_its_error_and_last_lines() {
        let mut steps = Steps::default();
        let logs: Vec<(&str, String)> = (1..=25).map(|i| ("b", format!("line {i}\n"))).collect();
        let logs: Vec<(&str, &str)> = logs.iter().map(|(d, m)| (*d, m.as_str())).collect();
        steps.apply(&status(&[vertex("b", "[2/3] RUN make", false, Some(1), None, "")], &logs)).unwrap();
        let failed = status(
            &[vertex(
                "b",
                "[2/3] RUN make",
                false,
                Some(1),
                Some(3),
                "process \"/bin/sh -c make\" did not complete successfully: exit code: 2",
            )],
            &[("b", "make: *** [all] Error 2")],
        );
        assert_eq!(
            steps.apply(&failed).unwrap(),
            ["#1 [2/3] RUN make  ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2"]
        );
        let failure = steps.failure().unwrap();
        assert!(failure.starts_with("#1 [2/3] RUN make: process"), "{failure}");
        assert!(failure.contains("line 25\nmake: *** [all] Error 2"), "{failure}");
        assert!(!failure.contains("line 5\n"), "only the last {KEPT_LINES} lines: {failure}");
    }
}
