//! `setup`'s own flags, parsed and checked before any call: the service, where its traffic comes
//! from, the names of what it creates, and whether to apply.

use std::ffi::OsString;

use crate::config::TrafficSource;

/// What `setup --help` prints.
pub(crate) const HELP: &str = "\
Creates what a canary deploy needs, from a service behind an Application Load Balancer: a canary
service (the same task definition and network, 0 tasks), a target group cloned from the service's,
the listener's forward turned into a weighted forward (100 to the service, 0 to the canary) and an
alarm on the canary's 5xx. Prints the plan (with the equivalent AWS CLI commands) and changes
nothing unless --apply is given. A second run finds everything in place and changes nothing.

Usage: ecs-deploy-action setup --cluster CLUSTER --service SERVICE
                               (--listener-arn ARN | --listener-rule-arn ARN) [--apply]
       ecs-deploy-action setup --native (blue-green | linear | canary) --role-arn ARN
                               --cluster CLUSTER --service SERVICE
                               (--listener-arn ARN | --listener-rule-arn ARN) [--apply]

With --native, what ECS's own strategy needs instead (deployed with `strategy: ecs`): a green target
group cloned from the service's, a production listener rule forwarding 100 to the service's target
group and 0 to green (the rule given, or a new rule matching every path on the listener, after its
other rules), and the service's deployment configuration (the strategy; bake 5 min; linear: 20% steps
2 min apart; canary: 10% for 5 min) with the load balancer's advanced configuration.

Options:
      --cluster NAME            the service's cluster
      --service NAME            the service the canary deploys will release to
      --listener-arn ARN        the listener whose default action forwards to the service
      --listener-rule-arn ARN   the listener rule that forwards to the service (instead of a listener)
      --canary-service NAME     the canary service to create [default: SERVICE-canary]
      --alarm-name NAME         the alarm on the canary's 5xx [default: CANARY-SERVICE-5xx]
      --aws-region REGION       [default: $AWS_REGION, else $AWS_DEFAULT_REGION]
      --aws-endpoint-url URL    another endpoint for every AWS service (a local emulator)
      --native STRATEGY         ECS's own blue-green, linear or canary instead of the action's canary
      --role-arn ARN            with --native: the infrastructure role ECS shifts the listener rule with
      --apply                   make the changes (without it: the plan only, nothing changed)
  -h, --help                    this help

The credentials are the ambient ones (environment, profile, instance role); `ecs-deploy-action
iam-policy --setup` with the same flags prints the policy they need.
";

/// The flags of one `setup` run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SetupArgs {
    pub(crate) cluster: String,
    pub(crate) service: String,
    pub(crate) source: TrafficSource,
    pub(crate) canary_service: String,
    pub(crate) alarm_name: String,
    pub(crate) region: String,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) apply: bool,
    /// `--native`: ECS's own strategy, with the infrastructure role (`--role-arn`).
    pub(crate) native: Option<(Native, String)>,
}

/// ECS's own strategies `setup --native` prepares a service for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Native {
    BlueGreen,
    Linear,
    Canary,
}

/// What the command line asked for: help, or a run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    Help,
    Run(Box<SetupArgs>),
}

/// `setup`'s flags (`args` without the program name and `setup`), the region from `var` when no
/// flag gives it. Every problem at once, each naming its flag and the fix.
pub(crate) fn parse(args: &[OsString], var: &impl Fn(&str) -> Option<String>) -> Result<Parsed, Vec<String>> {
    let valued = [
        "--cluster",
        "--service",
        "--listener-arn",
        "--listener-rule-arn",
        "--canary-service",
        "--alarm-name",
        "--aws-region",
        "--aws-endpoint-url",
        "--native",
        "--role-arn",
    ];
    let flags = crate::flags::scan(args, &valued, &["--apply"], "setup");
    if flags.help {
        return Ok(Parsed::Help);
    }
    let (apply, mut errors) = (flags.switch("--apply"), flags.errors.clone());
    let value = |name: &str| flags.value(name);
    let mut required = |name: &str, what: &str| {
        value(name).or_else(|| {
            errors.push(format!("{name} is required: {what}"));
            None
        })
    };
    let cluster = required("--cluster", "the cluster of the service");
    let service = required("--service", "the service canary deploys release to");
    let source = match (value("--listener-arn"), value("--listener-rule-arn")) {
        (Some(arn), None) if arn.contains(":listener/") => Some(TrafficSource::ListenerDefault(arn)),
        (None, Some(arn)) if arn.contains(":listener-rule/") => Some(TrafficSource::Rule(arn)),
        (Some(arn), None) => {
            errors.push(format!("--listener-arn `{arn}` is not a listener's ARN (…:listener/app/…)"));
            None
        }
        (None, Some(arn)) => {
            errors.push(format!("--listener-rule-arn `{arn}` is not a listener rule's ARN (…:listener-rule/app/…)"));
            None
        }
        (Some(_), Some(_)) => {
            errors.push(
                "--listener-arn and --listener-rule-arn both given: name the one that forwards to the service".into(),
            );
            None
        }
        (None, None) => {
            errors.push(
                "--listener-arn or --listener-rule-arn is required: where the service's traffic comes from".into(),
            );
            None
        }
    };
    let region = value("--aws-region").or_else(|| var("AWS_REGION")).or_else(|| var("AWS_DEFAULT_REGION"));
    if region.as_deref().is_none_or(str::is_empty) {
        errors.push("--aws-region is required (or AWS_REGION in the environment)".into());
    }
    let canary_service = value("--canary-service").or_else(|| service.as_ref().map(|s| format!("{s}-canary")));
    if let (Some(c), Some(s)) = (&canary_service, &service)
        && c == s
    {
        errors.push("--canary-service is the service itself: name another service".into());
    }
    for (flag, name) in [("--service", &service), ("--canary-service", &canary_service)] {
        if let Some(name) = name.as_deref().filter(|n| !ecs_name(n)) {
            errors.push(format!(
                "{flag} `{name}`: a service's name is 1 to 255 letters, digits, hyphens and underscores"
            ));
        }
    }
    let native = match (value("--native").as_deref(), value("--role-arn")) {
        (None, None) => None,
        (None, Some(_)) => {
            errors.push("--role-arn belongs to --native: the role ECS's own strategies shift traffic with".into());
            None
        }
        (Some(kind), role) => {
            let kind = match kind {
                "blue-green" => Some(Native::BlueGreen),
                "linear" => Some(Native::Linear),
                "canary" => Some(Native::Canary),
                other => {
                    errors.push(format!("--native `{other}`: one of blue-green, linear, canary"));
                    None
                }
            };
            if value("--canary-service").is_some() || value("--alarm-name").is_some() {
                errors.push("--canary-service and --alarm-name belong to the action's canary, not --native".into());
            }
            match role {
                Some(role) if role.starts_with("arn:") && role.contains(":role/") => kind.map(|k| (k, role)),
                Some(role) => {
                    errors.push(format!("--role-arn `{role}` is not a role's ARN (arn:aws:iam::ACCOUNT:role/NAME)"));
                    None
                }
                None => {
                    errors.push(
                        "--native needs --role-arn: the infrastructure role ECS changes the listener rule with (it trusts ecs.amazonaws.com and has AmazonECSInfrastructureRolePolicyForLoadBalancers)".into(),
                    );
                    None
                }
            }
        }
    };
    let alarm_name = value("--alarm-name").or_else(|| canary_service.as_ref().map(|c| format!("{c}-5xx")));
    match (cluster, service, source, canary_service, alarm_name, region) {
        (Some(cluster), Some(service), Some(source), Some(canary_service), Some(alarm_name), Some(region))
            if errors.is_empty() =>
        {
            Ok(Parsed::Run(Box::new(SetupArgs {
                cluster,
                service,
                source,
                canary_service,
                alarm_name,
                region,
                endpoint_url: value("--aws-endpoint-url").or_else(|| var("AWS_ENDPOINT_URL")),
                apply,
                native,
            })))
        }
        _ => Err(errors),
    }
}

fn ecs_name(name: &str) -> bool {
    (1..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_(args: &[&str]) -> Result<Parsed, Vec<String>> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args, &|name| (name == "AWS_REGION").then(|| "eu-west-1".to_string()))
    }

    const LISTENER: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/1/2";

    #[test]
    fn names_default_from_the_service_and_the_region_from_the_environment() {
        let Ok(Parsed::Run(a)) = parse_(&["--cluster", "prod", "--service=web", "--listener-arn", LISTENER]) else {
            panic!("parsed")
        };
        assert_eq!((a.canary_service.as_str(), a.alarm_name.as_str()), ("web-canary", "web-canary-5xx"));
        assert_eq!((a.region.as_str(), a.apply), ("eu-west-1", false));
        assert_eq!(a.source, TrafficSource::ListenerDefault(LISTENER.into()));
        assert_eq!(parse_(&["--apply", "-h"]), Ok(Parsed::Help));
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_flag() {
        let errors = parse_(&["--listener-rule-arn", LISTENER, "--bogus", "--canary-service"]).unwrap_err();
        let all = errors.join("\n");
        for expected in [
            "--cluster is required",
            "--service is required",
            "is not a listener rule's ARN",
            "unknown flag `--bogus`",
            "--canary-service needs a value",
        ] {
            assert!(all.contains(expected), "{expected} in:\n{all}");
        }
        let both = parse_(&[
            "--cluster",
            "c",
            "--service",
            "web",
            "--listener-arn",
            LISTENER,
            "--listener-rule-arn",
            "x",
            "--canary-service",
            "web",
        ]);
        let all = both.unwrap_err().join("\n");
        assert!(all.contains("both given") && all.contains("the service itself"), "{all}");
        let native = parse_(&["--cluster", "c", "--service", "web", "--listener-arn", LISTENER, "--native", "linear"]);
        assert!(native.unwrap_err().join("\n").contains("--native needs --role-arn"));
        let role = "arn:aws:iam::1:role/ecsInfra";
        let Ok(Parsed::Run(a)) = parse_(&[
            "--cluster",
            "c",
            "--service",
            "web",
            "--listener-arn",
            LISTENER,
            "--native=canary",
            "--role-arn",
            role,
        ]) else {
            panic!("parsed")
        };
        assert_eq!(a.native, Some((Native::Canary, role.to_string())));
    }
}
