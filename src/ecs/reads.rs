//! Service reads shared by every wait of a run: one DescribeServices answers up to ten services of
//! the cluster, so twenty services waiting at once cost two calls a look instead of twenty. A wait
//! asks for its service no older than it needs; the first to find the last look too old looks again
//! at every service being watched, and the others take that look.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use aws_sdk_ecs::types::Service;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::aws::call_failed;

/// ECS's most services in one DescribeServices.
const PER_CALL: usize = 10;

pub(crate) struct Reads {
    ecs: aws_sdk_ecs::Client,
    cluster: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The services being waited for, in the order first asked.
    watched: Vec<String>,
    /// Each one's last look.
    seen: HashMap<String, (Instant, Service)>,
}

impl Reads {
    /// Reads for the waits of `services`, all looked at from the first look on: the waits start one
    /// by one as their updates go through, and each would otherwise start with a look of its own.
    pub(crate) fn new(ecs: aws_sdk_ecs::Client, cluster: &str, services: &[&str]) -> Self {
        let state = State { watched: services.iter().map(|s| s.to_string()).collect(), ..State::default() };
        Reads { ecs, cluster: cluster.to_string(), state: Mutex::new(state) }
    }

    /// `name` as ECS described it at most `fresh` ago: the last look's when it is that recent, else a
    /// new look at every service being watched (the lock is held meanwhile: who waits for it takes it).
    pub(crate) async fn service(&self, name: &str, fresh: Duration) -> Result<Service> {
        let mut state = self.state.lock().await;
        if !state.watched.iter().any(|w| w == name) {
            state.watched.push(name.to_string());
        }
        if let Some((at, service)) = state.seen.get(name)
            && at.elapsed() < fresh
        {
            return Ok(service.clone());
        }
        let cluster = &self.cluster;
        let watched = state.watched.clone();
        for chunk in watched.chunks(PER_CALL) {
            let out = self
                .ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| call_failed("ECS DescribeServices", &e))
                .with_context(|| format!("could not describe services {} in cluster `{cluster}`", chunk.join(", ")))?;
            let now = Instant::now();
            for s in out.services() {
                if let Some(n) = s.service_name() {
                    state.seen.insert(n.to_string(), (now, s.clone()));
                }
            }
            if let Some(failure) =
                out.failures().iter().find(|f| f.arn().is_some_and(|a| a.ends_with(&format!("/{name}"))))
            {
                return Err(anyhow!(
                    "service `{name}` in cluster `{cluster}`: {}",
                    failure.reason().unwrap_or("unknown reason")
                ));
            }
        }
        state
            .seen
            .get(name)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| anyhow!("service `{name}` was not found in cluster `{cluster}`"))
    }

    /// Stops reading `name` (its wait ended): the next looks are for the others.
    pub(crate) async fn forget(&self, name: &str) {
        let mut state = self.state.lock().await;
        state.watched.retain(|w| w != name);
        state.seen.remove(name);
    }
}
