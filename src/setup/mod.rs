//! `ecs-deploy-action setup`: from a plain service behind an Application Load Balancer, what the
//! canary strategy needs (canary service, target group, weighted forward, alarm). Read-only survey,
//! then a plan printed with its AWS CLI equivalent; changes only with `--apply`, undone if one fails.

mod apply;
pub(crate) mod args;
mod changes;
mod cli;
mod native;
mod survey;

pub(crate) use self::native::green_name as native_green_name;
pub(crate) use self::survey::target_group_name;

use std::ffi::OsString;
use std::time::Duration;

use self::args::{Parsed, SetupArgs};
use self::changes::{CanaryTargetGroup, Change, Changes};
use self::survey::Survey;
use crate::aws::{Aws, ambient_config};
use crate::config::{AwsSettings, TrafficSource};
use crate::gha::Gha;
use crate::outcome::ExitStatus;

/// The alarm `setup` creates on the canary's target group: any 5xx its tasks answer within a minute
/// (no data is not breaching, so it is OK again a minute after a canary ends).
pub(crate) struct AlarmSpec {
    pub(crate) namespace: &'static str,
    pub(crate) metric: &'static str,
    pub(crate) period: i32,
    pub(crate) threshold: f64,
}

pub(crate) const ALARM: AlarmSpec =
    AlarmSpec { namespace: "AWS/ApplicationELB", metric: "HTTPCode_Target_5XX_Count", period: 60, threshold: 1.0 };

/// Runs `setup` with `args` (after the word `setup`).
pub(crate) async fn run(args: &[OsString], var: &impl Fn(&str) -> Option<String>, gha: &Gha) -> ExitStatus {
    let args = match args::parse(args, var) {
        Ok(Parsed::Help) => {
            print!("{}", args::HELP);
            return ExitStatus::Success;
        }
        Ok(Parsed::Run(a)) => a,
        Err(errors) => {
            for e in &errors {
                gha.error("Invalid input", &format!("setup: {e}"));
            }
            gha.info("Nothing was called or changed. `ecs-deploy-action setup --help` lists the flags.");
            return ExitStatus::InvalidInput;
        }
    };
    let settings = AwsSettings {
        region: args.region.clone(),
        role_to_assume: None,
        audience: "sts.amazonaws.com".into(),
        role_session_name: "ecs-deploy-action-setup".into(),
        role_duration: Duration::from_secs(3600),
        endpoint_url: args.endpoint_url.clone(),
    };
    let aws = Aws::new(ambient_config(&settings).await, None);
    let source = match &args.source {
        TrafficSource::ListenerDefault(arn) => format!("listener {arn}"),
        TrafficSource::Rule(arn) => format!("listener rule {arn}"),
    };
    let for_what = match &args.native {
        Some(_) => "ECS's own strategy",
        None => "the canary",
    };
    gha.info(&format!(
        "Setting up {for_what} for service `{}` (cluster `{}`), reached through {source}",
        args.service, args.cluster
    ));
    let planned = match survey::read(&aws, &args).await {
        Ok(survey) => Planned::from(&args, &survey).map(|p| (survey, p)),
        Err(e) => Err(e),
    };
    let (survey, planned) = match planned {
        Ok(p) => p,
        Err(e) => {
            gha.error("Setup refused", &with_policy_hint(&format!("{e:#}")));
            gha.info("Nothing was changed.");
            return ExitStatus::Failed;
        }
    };
    let what = if args.native.is_some() { "ECS's own strategy" } else { "a canary deploy" };
    print_plan(&args, &survey, &planned, gha);
    let n = planned.descriptions(&args, &survey).len();
    if n == 0 {
        gha.notice("Set up", &format!("nothing to change: everything {what} of `{}` needs is in place", args.service));
        print_inputs(&args, gha);
        return ExitStatus::Success;
    }
    if !args.apply {
        gha.info("Nothing was changed: run again with --apply to make these changes (or run the commands above).");
        return ExitStatus::Success;
    }
    let s = if n == 1 { "" } else { "s" };
    gha.info(&format!("Applying {n} change{s}:"));
    let applied = match &planned {
        Planned::Canary(changes) => apply::apply(&aws, &args, &survey, changes, gha).await,
        Planned::Native(plan) => native::apply(&aws, &args, &survey, plan, gha).await,
    };
    match applied {
        Ok(()) => {
            gha.notice("Set up", &format!("{n} change{s} made: `{}` is ready for {what}", args.service));
            print_inputs(&args, gha);
            ExitStatus::Success
        }
        Err(e) => {
            gha.error("Setup failed", &with_policy_hint(&format!("{e:#}")));
            ExitStatus::Failed
        }
    }
}

/// What a run will change: for the action's canary, or for ECS's own strategy.
enum Planned {
    Canary(Changes),
    Native(native::NativePlan),
}

impl Planned {
    fn from(args: &SetupArgs, survey: &Survey) -> anyhow::Result<Planned> {
        match &args.native {
            Some((kind, _)) => native::plan(args, survey, *kind).map(Planned::Native),
            None => changes::plan(args, survey).map(Planned::Canary),
        }
    }

    fn in_place(&self) -> &[String] {
        match self {
            Planned::Canary(c) => &c.in_place,
            Planned::Native(n) => &n.in_place,
        }
    }

    fn descriptions(&self, args: &SetupArgs, survey: &Survey) -> Vec<String> {
        match self {
            Planned::Canary(c) => c.changes.iter().map(|ch| describe(ch, args, survey, &c.canary_tg)).collect(),
            Planned::Native(n) => n.changes.iter().map(|ch| native::describe(ch, args, survey)).collect(),
        }
    }

    fn commands(&self, args: &SetupArgs, survey: &Survey) -> Vec<String> {
        match self {
            Planned::Canary(c) => cli::commands(args, survey, c),
            Planned::Native(n) => cli::native_commands(args, survey, n),
        }
    }
}

/// A refused call's error, with the command that prints the permissions setup needs.
fn with_policy_hint(error: &str) -> String {
    if error.contains("AccessDenied") {
        format!(
            "{error}\nhint: `ecs-deploy-action iam-policy --setup` with the same flags prints the policy setup needs (every statement scoped to what it reads and makes)"
        )
    } else {
        error.to_string()
    }
}

fn print_plan(args: &SetupArgs, survey: &Survey, planned: &Planned, gha: &Gha) {
    let b = &survey.binding;
    gha.info(&format!(
        "  service `{}`: {}, behind target group `{}` (container {}:{})",
        args.service,
        crate::text::family_revision(survey.service.task_definition().unwrap_or_default()),
        survey.stable_tg.target_group_name().unwrap_or(&b.target_group_arn),
        b.container_name,
        b.container_port
    ));
    for line in planned.in_place() {
        gha.info(&format!("  in place: {line}"));
    }
    let descriptions = planned.descriptions(args, survey);
    if descriptions.is_empty() || args.apply {
        // Applying: each change is said as it is made.
        return;
    }
    gha.info(&format!("Plan: {} change{}", descriptions.len(), if descriptions.len() == 1 { "" } else { "s" }));
    for (i, line) in descriptions.iter().enumerate() {
        gha.info(&format!("  {}. {line}", i + 1));
    }
    gha.info("The same with the AWS CLI:");
    for command in planned.commands(args, survey) {
        gha.info(&format!("  {command}"));
    }
}

/// A change as the plan says it.
pub(crate) fn describe(change: &Change, args: &SetupArgs, survey: &Survey, tg: &CanaryTargetGroup) -> String {
    let tg_name = survey::target_group_name(&args.canary_service);
    let stable = survey.stable_tg.target_group_name().unwrap_or_default();
    match change {
        Change::TargetGroup => format!(
            "create target group `{tg_name}`, a clone of `{stable}` (protocol, port, VPC, health check{})",
            survey.deregistration_delay.as_ref().map(|d| format!(", deregistration delay {d}s")).unwrap_or_default()
        ),
        Change::Forward => format!(
            "make {} a weighted forward: 100% to `{stable}`, 0% to `{tg_name}` (the traffic does not change)",
            changes::source_words(&args.source)
        ),
        Change::CanaryService => format!(
            "create service `{}`: {}, the network and deployment settings of `{}`, 0 tasks, behind `{}`",
            args.canary_service,
            crate::text::family_revision(survey.service.task_definition().unwrap_or_default()),
            args.service,
            match tg {
                CanaryTargetGroup::New(name) => name.as_str(),
                CanaryTargetGroup::Existing(arn) => arn.as_str(),
            }
        ),
        Change::Alarm => format!(
            "create alarm `{}`: any 5xx answered by `{}`'s tasks within {} s (missing data is OK)",
            args.alarm_name, args.canary_service, ALARM.period
        ),
    }
}

/// The workflow's inputs for a canary deploy of what is now set up.
fn print_inputs(args: &SetupArgs, gha: &Gha) {
    if args.native.is_some() {
        gha.info(&format!(
            "Deploy it with:\n  with:\n    cluster: {}\n    service: {}\n    strategy: ecs",
            args.cluster, args.service
        ));
        return;
    }
    let source = match &args.source {
        TrafficSource::ListenerDefault(arn) => format!("listener-arn: {arn}"),
        TrafficSource::Rule(arn) => format!("listener-rule-arn: {arn}"),
    };
    let canary = if args.canary_service == format!("{}-canary", args.service) {
        String::new()
    } else {
        format!("\n    canary-service: {}", args.canary_service)
    };
    gha.info(&format!(
        "Deploy it with:\n  with:\n    cluster: {}\n    service: {}\n    strategy: canary\n    {source}{canary}\n    alarms: {}",
        args.cluster, args.service, args.alarm_name
    ));
}
