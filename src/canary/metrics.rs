//! The ALB metrics the comparison gates read from CloudWatch: a target group's request and 5xx
//! counts since a moment, and its response-time statistic over one period.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, Statistic};

use crate::aws::{Aws, call_failed};
use crate::config::thresholds::LatencyStat;
use crate::plan::TargetGroup;

/// What one target group answered over a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Counts {
    pub(crate) errors: f64,
    pub(crate) requests: f64,
}

impl Counts {
    pub(super) fn rate(&self) -> f64 {
        if self.requests > 0.0 { self.errors / self.requests } else { 0.0 }
    }
}

pub(super) async fn counts(aws: &Aws, tg: &TargetGroup, since: SystemTime) -> Result<Counts> {
    let errors = metric_sum(aws, tg, "HTTPCode_Target_5XX_Count", since).await?;
    let requests = metric_sum(aws, tg, "RequestCount", since).await?;
    Ok(Counts { errors, requests })
}

fn dimensions(tg: &TargetGroup) -> Vec<Dimension> {
    let mut dimensions = vec![Dimension::builder().name("TargetGroup").value(&tg.dimension).build()];
    if let Some(lb) = &tg.load_balancer_dimension {
        dimensions.push(Dimension::builder().name("LoadBalancer").value(lb).build());
    }
    dimensions
}

/// Sum of `metric` for `tg` from `since` until now (whole seconds, as CloudWatch stores them).
async fn metric_sum(aws: &Aws, tg: &TargetGroup, metric: &str, since: SystemTime) -> Result<f64> {
    let start = DateTime::from_secs(DateTime::from(since).secs());
    let end = DateTime::from_secs(DateTime::from(SystemTime::now() + Duration::from_secs(1)).secs() + 1);
    let out = aws
        .cloudwatch
        .get_metric_statistics()
        .namespace("AWS/ApplicationELB")
        .metric_name(metric)
        .set_dimensions(Some(dimensions(tg)))
        .start_time(start)
        .end_time(end)
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .map_err(|e| call_failed("CloudWatch GetMetricStatistics", &e))?;
    // Folded from +0.0: an empty `sum()` of f64 is -0.0, which printed as "-0%" when ALB had
    // published no 5xx datapoint (it publishes none for a count of zero).
    Ok(out.datapoints().iter().filter_map(|d| d.sum()).fold(0.0, |total, x| total + x))
}

/// `TargetResponseTime`'s `stat` for `tg` over one period from `since` until now, in seconds (a
/// percentile cannot be added up across periods, so the window is one period).
pub(super) async fn response_time(
    aws: &Aws,
    tg: &TargetGroup,
    stat: LatencyStat,
    since: SystemTime,
) -> Result<Option<f64>> {
    let start = DateTime::from(since).secs();
    let now = DateTime::from(SystemTime::now()).secs() + 2;
    let period = i32::try_from(((now - start).max(1) + 59) / 60 * 60).unwrap_or(86_400);
    let query = MetricDataQuery::builder()
        .id("latency")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/ApplicationELB")
                        .metric_name("TargetResponseTime")
                        .set_dimensions(Some(dimensions(tg)))
                        .build(),
                )
                .period(period)
                .stat(stat.cloudwatch())
                .build(),
        )
        .build();
    let out = aws
        .cloudwatch
        .get_metric_data()
        .metric_data_queries(query)
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(start + i64::from(period)))
        .send()
        .await
        .map_err(|e| call_failed("CloudWatch GetMetricData", &e))?;
    Ok(out.metric_data_results().first().and_then(|r| r.values().first().copied()))
}
