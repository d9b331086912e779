//! CloudWatch alarms by name, metric and composite alike: the plan checks they exist, the alarms gate
//! whether they fire.

use anyhow::Result;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};

use crate::aws::{Aws, call_failed};

/// One CloudWatch alarm as DescribeAlarms tells it (metric and composite alike).
pub(crate) struct AlarmState {
    pub(crate) name: String,
    pub(crate) firing: bool,
    pub(crate) reason: String,
}

/// The alarms named `names` that exist, metric and composite: the one DescribeAlarms of the action
/// (the plan checks they exist, the gate whether they fire).
pub(crate) async fn alarm_states(aws: &Aws, names: &[String]) -> Result<Vec<AlarmState>> {
    let out = aws
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .map_err(|e| call_failed("CloudWatch DescribeAlarms", &e))?;
    let state = |name: Option<&str>, value: Option<&StateValue>, reason: Option<&str>| AlarmState {
        name: name.unwrap_or("?").to_string(),
        firing: value == Some(&StateValue::Alarm),
        reason: reason.unwrap_or("no reason given").to_string(),
    };
    Ok(out
        .metric_alarms()
        .iter()
        .map(|a| state(a.alarm_name(), a.state_value(), a.state_reason()))
        .chain(out.composite_alarms().iter().map(|a| state(a.alarm_name(), a.state_value(), a.state_reason())))
        .collect())
}
