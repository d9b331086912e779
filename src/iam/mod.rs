//! The IAM policy a run needs, from the same configuration that drives the run: every statement is
//! one group of calls the action makes, scoped to the resources of this deploy. `iam-policy` prints
//! it; the README's Permissions section is generated from it and a test keeps them equal.

pub(crate) mod command;
mod preview;
pub(crate) mod setup;
pub(crate) mod trust;

use serde_json::{Value, json};

use crate::config::{Config, ImageSource, Strategy, TrafficSource};

/// What the resources of a deploy are called: resolved from the plan (`iam-policy`), or the inputs
/// alone with wildcards where only AWS knows (`--offline`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scope {
    pub(crate) partition: String,
    pub(crate) region: String,
    /// The 12-digit account, or `*` offline.
    pub(crate) account: String,
    /// Task definition families the run registers revisions of (`*` offline).
    pub(crate) families: Vec<String>,
    /// The task and execution roles of those task definitions (`role/*` offline).
    pub(crate) roles: Vec<String>,
    /// `awslogs` groups of those task definitions (`*` offline).
    pub(crate) log_groups: Vec<String>,
    /// Whether the revisions carry tags (ECS then also checks ecs:TagResource on them).
    pub(crate) tagged_revisions: bool,
    /// Services ECS deploys with its own BLUE_GREEN, LINEAR or CANARY (offline: every service of
    /// `strategy: ecs`; unset, only the plan knows).
    pub(crate) native: Vec<String>,
}

impl Scope {
    /// From the inputs alone: the account, families, roles and log groups as wildcards.
    pub(crate) fn offline(config: &Config) -> Scope {
        Scope {
            partition: partition(&config.aws.region).into(),
            region: config.aws.region.clone(),
            account: "*".into(),
            families: vec!["*".into()],
            roles: vec![format!("arn:{}:iam::*:role/*", partition(&config.aws.region))],
            log_groups: vec!["*".into()],
            tagged_revisions: true,
            native: match &config.deploy {
                // Named, or implied by a pause for people or the run that answers it.
                Some(d)
                    if matches!(&d.strategy, Strategy::Ecs(e) if e.named || e.approval.is_some())
                        || d.resume.is_some() =>
                {
                    std::iter::once(&d.service).chain(&d.also).cloned().collect()
                }
                _ => Vec::new(),
            },
        }
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.partition, self.region, self.account)
    }
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// One statement: a group of calls, on what, and under which condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sid: &'static str,
    pub(crate) actions: Vec<&'static str>,
    pub(crate) resources: Vec<String>,
    pub(crate) condition: Option<Value>,
}

impl Statement {
    fn new(sid: &'static str, actions: &[&'static str], resources: Vec<String>) -> Statement {
        Statement { sid, actions: actions.to_vec(), resources, condition: None }
    }

    fn when(mut self, condition: Value) -> Statement {
        self.condition = Some(condition);
        self
    }

    fn json(&self) -> StatementJson<'_> {
        StatementJson {
            sid: self.sid,
            effect: "Allow",
            action: &self.actions,
            resource: if self.resources.len() == 1 { json!(self.resources[0]) } else { json!(self.resources) },
            condition: self.condition.as_ref(),
        }
    }
}

/// A statement as IAM documents write it: Sid, Effect, Action, Resource, Condition, in that order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatementJson<'a> {
    sid: &'a str,
    effect: &'a str,
    action: &'a [&'static str],
    resource: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<&'a Value>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyJson<'a> {
    version: &'a str,
    statement: Vec<StatementJson<'a>>,
}

/// The statements `config` needs, scoped by `scope`.
pub(crate) fn statements(config: &Config, scope: &Scope) -> Vec<Statement> {
    let mut out = Vec::new();
    match &config.image {
        ImageSource::Build(b) => {
            out.push(Statement::new("EcrLogin", &["ecr:GetAuthorizationToken"], vec!["*".into()]));
            out.push(Statement::new(
                "EcrPush",
                &[
                    "ecr:DescribeRepositories",
                    "ecr:BatchGetImage",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage",
                ],
                vec![scope.arn("ecr", &format!("repository/{}", b.ecr_repository))],
            ));
        }
        ImageSource::Existing { uri, registry } => {
            if let Some(repository) = ecr_repository(uri, registry.as_deref()) {
                out.push(Statement::new("EcrLogin", &["ecr:GetAuthorizationToken"], vec!["*".into()]));
                out.push(Statement::new(
                    "EcrResolveTag",
                    &["ecr:BatchGetImage"],
                    vec![scope.arn("ecr", &format!("repository/{repository}"))],
                ));
            }
        }
        ImageSource::AsRegistered => {}
    }
    let Some(d) = &config.deploy else { return out };
    let cluster = &d.cluster;
    let stable: Vec<String> = std::iter::once(&d.service)
        .chain(&d.also)
        .map(|s| scope.arn("ecs", &format!("service/{cluster}/{s}")))
        .collect();
    let mut services = stable.clone();
    if let Strategy::Canary(c) = &d.strategy {
        services.push(scope.arn("ecs", &format!("service/{cluster}/{}", c.canary_service)));
    }
    out.push(Statement::new(
        "EcsServices",
        &["ecs:DescribeServices", "ecs:UpdateService", "ecs:ListTagsForResource"],
        services,
    ));
    // The lease, and who deployed what once a deploy succeeded: only the action's own keys.
    let keys: Vec<&str> = std::iter::once(crate::ecs::lease::KEY).chain(crate::provenance::SERVICE_KEYS).collect();
    out.push(
        Statement::new("EcsDeployLease", &["ecs:TagResource", "ecs:UntagResource"], stable)
            .when(json!({"ForAllValues:StringEquals": {"aws:TagKeys": keys}})),
    );
    // Neither call can be scoped to a resource: ECS checks them against "*".
    out.push(Statement::new(
        "EcsTaskDefinitions",
        &["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"],
        vec!["*".into()],
    ));
    let revisions: Vec<String> =
        scope.families.iter().map(|f| scope.arn("ecs", &format!("task-definition/{f}:*"))).collect();
    if scope.tagged_revisions {
        out.push(
            Statement::new("EcsTagNewRevisions", &["ecs:TagResource"], revisions.clone())
                .when(json!({"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}})),
        );
    }
    let cluster_arn = scope.arn("ecs", &format!("cluster/{cluster}"));
    out.push(
        Statement::new("EcsListTasks", &["ecs:ListTasks"], vec!["*".into()])
            .when(json!({"ArnEquals": {"ecs:cluster": cluster_arn}})),
    );
    let tasks = vec![scope.arn("ecs", &format!("task/{cluster}/*"))];
    if d.pre_deploy.is_some() {
        out.push(
            Statement::new("EcsRunPreDeployTask", &["ecs:RunTask"], revisions)
                .when(json!({"ArnEquals": {"ecs:cluster": cluster_arn}})),
        );
        out.push(Statement::new("EcsTasks", &["ecs:DescribeTasks", "ecs:StopTask"], tasks));
    } else {
        out.push(Statement::new("EcsTasks", &["ecs:DescribeTasks"], tasks));
    }
    if !scope.roles.is_empty() {
        out.push(
            Statement::new("PassTaskRoles", &["iam:PassRole"], scope.roles.clone())
                .when(json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}})),
        );
    }
    if !scope.native.is_empty() {
        let deployed: Vec<String> =
            scope.native.iter().map(|s| scope.arn("ecs", &format!("service/{cluster}/{s}"))).collect();
        out.push(Statement::new("EcsListServiceDeployments", &["ecs:ListServiceDeployments"], deployed));
        let deployments: Vec<String> =
            scope.native.iter().map(|s| scope.arn("ecs", &format!("service-deployment/{cluster}/{s}/*"))).collect();
        out.push(Statement::new(
            "EcsServiceDeployments",
            &["ecs:DescribeServiceDeployments", "ecs:ContinueServiceDeployment", "ecs:StopServiceDeployment"],
            deployments,
        ));
    }
    let canary = match &d.strategy {
        Strategy::Canary(c) => Some(c),
        _ => None,
    };
    if canary.is_some() || !scope.native.is_empty() {
        let mut read = vec![
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
        ];
        if canary.is_some() {
            read.insert(0, "elasticloadbalancing:DescribeListeners");
            read.insert(3, "elasticloadbalancing:DescribeTargetGroupAttributes");
        }
        out.push(Statement::new("ElbRead", &read, vec!["*".into()]));
    }
    if let Some(c) = canary {
        let (action, arn) = match &c.traffic {
            TrafficSource::ListenerDefault(arn) => ("elasticloadbalancing:ModifyListener", arn),
            TrafficSource::Rule(arn) => ("elasticloadbalancing:ModifyRule", arn),
        };
        out.push(Statement::new("ElbShiftTraffic", &[action], vec![arn.clone()]));
    }
    let gates = match &d.strategy {
        Strategy::Canary(c) => Some(&c.gates),
        Strategy::Ecs(e) if !scope.native.is_empty() => Some(&e.gates),
        _ => None,
    };
    if let Some(gates) = gates {
        if !gates.alarms.is_empty() {
            let alarms = gates.alarms.iter().map(|a| scope.arn("cloudwatch", &format!("alarm:{a}"))).collect();
            out.push(Statement::new("CloudWatchAlarms", &["cloudwatch:DescribeAlarms"], alarms));
        }
        let mut metrics = Vec::new();
        if gates.max_error_rate.is_some() || gates.max_latency.is_some() {
            metrics.push("cloudwatch:GetMetricStatistics");
        }
        if gates.max_latency.is_some() {
            metrics.push("cloudwatch:GetMetricData");
        }
        if !metrics.is_empty() {
            out.push(Statement::new("CloudWatchMetrics", &metrics, vec!["*".into()]));
        }
    }
    let logs: Vec<String> =
        scope.log_groups.iter().map(|g| scope.arn("logs", &format!("log-group:{g}:log-stream:*"))).collect();
    out.push(Statement::new("ReadTaskLogs", &["logs:GetLogEvents"], logs));
    if d.keep_revisions.is_some() {
        // Listing and deregistering revisions take no resource in IAM; what uses them is read
        // from every service of the cluster and every EventBridge rule's targets.
        out.push(Statement::new(
            "PruneRevisions",
            &["ecs:ListTaskDefinitions", "ecs:DeregisterTaskDefinition", "ecs:ListServices"],
            vec!["*".into()],
        ));
        out.push(Statement::new(
            "PruneReadServices",
            &["ecs:DescribeServices"],
            vec![scope.arn("ecs", &format!("service/{cluster}/*"))],
        ));
        out.push(Statement::new("PruneReadSchedules", &["events:ListRules"], vec!["*".into()]));
        out.push(Statement::new(
            "PruneReadScheduleTargets",
            &["events:ListTargetsByRule"],
            vec![scope.arn("events", "rule/*")],
        ));
    }
    if let Some(named) = &d.scheduled_tasks {
        let rules: Vec<String> = match named {
            Some(names) => names.iter().map(|n| scope.arn("events", &format!("rule/{n}"))).collect(),
            None => {
                out.push(Statement::new("ScheduledTasksFind", &["events:ListRules"], vec!["*".into()]));
                vec![scope.arn("events", "rule/*")]
            }
        };
        out.push(Statement::new("ScheduledTasksMove", &["events:ListTargetsByRule", "events:PutTargets"], rules));
        // A target is put back with its role, which EventBridge passes to start the task.
        out.push(
            Statement::new(
                "ScheduledTasksPassRole",
                &["iam:PassRole"],
                vec![format!("arn:{}:iam::{}:role/*", scope.partition, scope.account)],
            )
            .when(json!({"StringEquals": {"iam:PassedToService": "events.amazonaws.com"}})),
        );
    }
    // IAM refuses a whole document with a statement that grants nothing ("Policy statement must
    // contain resources"): containers that do not log through awslogs need no ReadTaskLogs.
    out.retain(|s| !s.resources.is_empty());
    out
}

/// The policy document, as `iam-policy` prints it.
pub(crate) fn document(statements: &[Statement]) -> String {
    let doc = PolicyJson { version: "2012-10-17", statement: statements.iter().map(Statement::json).collect() };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The ECR repository of an image on an ECR host (or on the explicit `registry`, an ECR stand-in).
fn ecr_repository(uri: &str, registry: Option<&str>) -> Option<String> {
    let (host, rest) = uri.split_once('/')?;
    let ecr = crate::image::registry::is_ecr_host(host) || registry == Some(host);
    ecr.then(|| crate::ecs::taskdef::repository_of(rest).to_string())
}

#[cfg(test)]
mod tests;
