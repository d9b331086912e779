//! The AWS clients of one run, all built from one `SdkConfig` (region, endpoint override, retries,
//! credentials), so production and tests reach AWS the same way.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::SharedCredentialsProvider;

use crate::calls::CallCounter;
use crate::config::AwsSettings;

#[derive(Clone, Debug)]
pub(crate) struct Aws {
    /// Every request any of the clients sends.
    pub(crate) calls: CallCounter,
    pub(crate) ecs: aws_sdk_ecs::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) cloudwatch: aws_sdk_cloudwatch::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) ecr: aws_sdk_ecr::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) events: aws_sdk_eventbridge::Client,
}

/// Every AWS call has a deadline, the abort's included: a connection that hangs costs at most an
/// attempt, and a call with its retries at most the operation timeout, never the whole run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts per call. A deploy shares its account's API rate limits with everything else, and a
/// mutating call that gives up turns a healthy release into a rollback: up to 8 attempts, backing
/// off from `FIRST_BACKOFF` (jittered, doubling to 20 s), all within `OPERATION_TIMEOUT`.
const MAX_ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Loads the ambient configuration (environment, profile, container or instance credentials) for the
/// run's region and endpoint. Retries: standard mode, jittered backoff on throttling and 5xx, none on
/// other 4xx; `AWS_MAX_ATTEMPTS` overrides the attempt count (most tests set 1).
pub(crate) async fn ambient_config(settings: &AwsSettings) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts()).with_initial_backoff(FIRST_BACKOFF))
        .timeout_config(timeouts);
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

fn max_attempts() -> u32 {
    std::env::var("AWS_MAX_ATTEMPTS").ok().and_then(|v| v.parse().ok()).filter(|n| *n >= 1).unwrap_or(MAX_ATTEMPTS)
}

impl Aws {
    /// Every client from `sdk`, with `credentials` (an assumed role's session) in place of the
    /// ambient ones. The session is its own cache (it refreshes before expiry), so the SDK's is off:
    /// every request asks it.
    pub(crate) fn new(sdk: SdkConfig, credentials: Option<SharedCredentialsProvider>) -> Self {
        let sdk = match credentials {
            Some(provider) => sdk
                .into_builder()
                .credentials_provider(provider)
                .identity_cache(aws_config::identity::IdentityCache::no_cache())
                .build(),
            None => sdk,
        };
        let calls = CallCounter::default();
        Aws {
            ecs: aws_sdk_ecs::Client::from_conf(
                aws_sdk_ecs::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
            ecr: aws_sdk_ecr::Client::from_conf(
                aws_sdk_ecr::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
            events: aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
            calls,
        }
    }
}

/// A failed call as an error that names it (`CloudWatch GetMetricStatistics: Throttling: Rate
/// exceeded`): which service, which operation, and what AWS said.
pub(crate) fn call_failed<E, R>(operation: &'static str, err: &aws_sdk_ecs::error::SdkError<E, R>) -> anyhow::Error
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    anyhow::anyhow!("{operation}: {}", describe_error(err))
}

/// Whether AWS refused the call for a missing permission (`AccessDenied`, `AccessDeniedException`).
pub(crate) fn is_access_denied<E, R>(err: &aws_sdk_ecs::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()).is_some_and(|c| c.starts_with("AccessDenied"))
}

/// An AWS SDK error as a person needs it: the service's own code and message, not the SDK's
/// "service error" wrapper.
pub(crate) fn describe_error<E, R>(err: &aws_sdk_ecs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_ecs::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let e = e.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => e.to_string(),
            }
        }
        SdkError::DispatchFailure(_) => {
            format!("could not reach AWS ({}): check aws-endpoint-url, the network and the region", source_chain(err))
        }
        SdkError::TimeoutError(_) => format!(
            "AWS did not answer within {}s (each attempt may take {}s): check aws-endpoint-url and the network",
            OPERATION_TIMEOUT.as_secs(),
            ATTEMPT_TIMEOUT.as_secs()
        ),
        SdkError::ResponseError(_) => format!("unreadable answer from AWS: {}", source_chain(err)),
        other => source_chain(other),
    }
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
