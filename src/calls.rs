//! Counts the AWS requests a run sends, per service and operation (retries included), so the log can
//! say what a deploy costs in API calls and the benchmarks can compare it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Clone, Debug, Default)]
pub(crate) struct CallCounter {
    counts: Arc<Mutex<BTreeMap<(String, String), u32>>>,
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            *counts.entry((m.service().to_string(), m.name().to_string())).or_default() += 1;
        }
        Ok(())
    }
}

impl CallCounter {
    /// One line per service: `ECS 31 (DescribeServices 24, UpdateService 3, …)`, busiest first.
    pub(crate) fn summary(&self) -> Vec<String> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut services: BTreeMap<&str, Vec<(&str, u32)>> = BTreeMap::new();
        for ((service, operation), n) in counts.iter() {
            services.entry(service).or_default().push((operation, *n));
        }
        let mut lines: Vec<(u32, String)> = services
            .into_iter()
            .map(|(service, mut ops)| {
                ops.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                let total: u32 = ops.iter().map(|(_, n)| n).sum();
                let detail: Vec<String> = ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
                (total, format!("{service} {total} ({})", detail.join(", ")))
            })
            .collect();
        lines.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        lines.into_iter().map(|(_, line)| line).collect()
    }
}
