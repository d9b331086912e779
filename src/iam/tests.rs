//! The policy per configuration, the README's Permissions section against the generator, and the
//! trust policy against a token shaped like GitHub's.

use serde_json::Value;

use super::trust::{self, Subject};
use super::*;
use crate::config::Inputs;

const LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";

/// The example the README's Permissions section is generated from, as flags.
const README_EXAMPLE: &[&str] = &[
    "--aws-region",
    "us-east-1",
    "--ecr-repository",
    "app",
    "--cluster",
    "prod",
    "--service",
    "web, worker",
    "--strategy",
    "canary",
    "--listener-arn",
    LISTENER,
    "--alarms",
    "web-5xx",
    "--max-error-rate",
    "stable + 1%",
    "--max-latency",
    "p99 < 800ms",
    "--pre-deploy-command",
    "./app migrate",
];

fn config(flags: &[&str]) -> Config {
    let args = std::iter::once("ecs-deploy-action").chain(flags.iter().copied());
    let var = |name: &str| (name == "GITHUB_SHA").then(|| "0123abc".to_string());
    let inputs = Inputs::from_env_and_args(var, args).expect("flags parse");
    Config::from_inputs(&inputs, var).expect("a valid configuration")
}

fn sids(flags: &[&str]) -> Vec<&'static str> {
    let c = config(flags);
    statements(&c, &Scope::offline(&c)).iter().map(|s| s.sid).collect()
}

fn actions(flags: &[&str]) -> Vec<&'static str> {
    let c = config(flags);
    statements(&c, &Scope::offline(&c)).into_iter().flat_map(|s| s.actions).collect()
}

#[test]
fn each_configuration_gets_the_statements_its_calls_need_and_no_more() {
    let rolling = ["--aws-region", "us-east-1", "--image", "nginx:1.27", "--cluster", "prod", "--service", "web"];
    assert_eq!(
        sids(&rolling),
        [
            "EcsServices",
            "EcsDeployLease",
            "EcsTaskDefinitions",
            "EcsTagNewRevisions",
            "EcsListTasks",
            "EcsTasks",
            "PassTaskRoles",
            "ReadTaskLogs"
        ],
        "an image off ECR needs no ECR permission, a rolling deploy no ELB or CloudWatch"
    );
    assert!(!actions(&rolling).contains(&"ecs:RunTask") && !actions(&rolling).contains(&"ecs:StopTask"));
    let with_task = [&rolling[..], &["--pre-deploy-command", "migrate"]].concat();
    assert!(actions(&with_task).contains(&"ecs:RunTask") && actions(&with_task).contains(&"ecs:StopTask"));

    let build = ["--aws-region", "us-east-1", "--ecr-repository", "app"];
    assert_eq!(sids(&build), ["EcrLogin", "EcrPush"], "a build-only run touches ECR alone");

    let rule = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
    let canary = [&rolling[..], &["--strategy", "canary", "--listener-rule-arn", rule]].concat();
    assert!(actions(&canary).contains(&"elasticloadbalancing:ModifyRule"));
    assert!(!actions(&canary).contains(&"elasticloadbalancing:ModifyListener"));
    assert!(!sids(&canary).contains(&"CloudWatchAlarms") && !sids(&canary).contains(&"CloudWatchMetrics"));
    let rate = [&canary[..], &["--max-error-rate", "1%"]].concat();
    assert!(actions(&rate).contains(&"cloudwatch:GetMetricStatistics"));
    assert!(!actions(&rate).contains(&"cloudwatch:GetMetricData"), "percentiles only for a latency gate");

    // ECS's own strategies: its service deployments are read and answered, the rules and target
    // groups read, the gates' metrics read; nothing on the load balancer is changed by the action.
    let ecs = [&rolling[..], &["--strategy", "ecs", "--max-error-rate", "stable + 1%"]].concat();
    for action in [
        "ecs:ListServiceDeployments",
        "ecs:DescribeServiceDeployments",
        "ecs:ContinueServiceDeployment",
        "ecs:StopServiceDeployment",
        "elasticloadbalancing:DescribeRules",
        "cloudwatch:GetMetricStatistics",
    ] {
        assert!(actions(&ecs).contains(&action), "{action}");
    }
    assert!(!actions(&ecs).iter().any(|a| a.starts_with("elasticloadbalancing:Modify")));
    let c = config(&ecs);
    let deployments =
        statements(&c, &Scope::offline(&c)).into_iter().find(|s| s.sid == "EcsServiceDeployments").unwrap();
    assert_eq!(deployments.resources, ["arn:aws:ecs:us-east-1:*:service-deployment/prod/web/*"]);
    // Left to the service, only the plan knows: the offline policy of a rolling deploy stays rolling's.
    assert!(!sids(&rolling).contains(&"EcsServiceDeployments"));
    // A pause for people, and the run that answers it, are ECS's own strategy whatever `strategy` says.
    let approval = [&rolling[..], &["--approval", "before-production"]].concat();
    assert!(sids(&approval).contains(&"EcsServiceDeployments"));
    let resume = ["--aws-region", "us-east-1", "--cluster", "prod", "--service", "web", "--resume", "continue"];
    assert!(actions(&resume).contains(&"ecs:ContinueServiceDeployment"));
}

#[test]
fn resources_are_this_deploys_with_wildcards_only_where_the_inputs_cannot_know() {
    let c = config(README_EXAMPLE);
    let all = statements(&c, &Scope::offline(&c));
    let find = |sid: &str| all.iter().find(|s| s.sid == sid).unwrap();
    assert_eq!(
        find("EcsServices").resources,
        [
            "arn:aws:ecs:us-east-1:*:service/prod/web",
            "arn:aws:ecs:us-east-1:*:service/prod/worker",
            "arn:aws:ecs:us-east-1:*:service/prod/web-canary"
        ]
    );
    // The lease tag goes on the deployed services only, and only that tag key.
    assert_eq!(find("EcsDeployLease").resources.len(), 2);
    assert_eq!(
        find("EcsDeployLease").condition.as_ref().unwrap()["ForAllValues:StringEquals"]["aws:TagKeys"][0],
        crate::ecs::lease::KEY
    );
    assert_eq!(find("ElbShiftTraffic").resources, [LISTENER]);
    assert_eq!(find("CloudWatchAlarms").resources, ["arn:aws:cloudwatch:us-east-1:*:alarm:web-5xx"]);
    assert_eq!(find("EcrPush").resources, ["arn:aws:ecr:us-east-1:*:repository/app"]);
    let cn = config(&["--aws-region", "cn-north-1", "--ecr-repository", "app"]);
    assert!(statements(&cn, &Scope::offline(&cn))[1].resources[0].starts_with("arn:aws-cn:ecr:cn-north-1:"));
}

/// docs/permissions.md (the README's Permissions section points at it) is this generator's output for
/// `README_EXAMPLE`.
#[test]
fn the_readme_permissions_section_is_what_the_command_prints() {
    let c = config(README_EXAMPLE);
    let expected = format!("```json\n{}\n```", document(&statements(&c, &Scope::offline(&c))));
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/permissions.md")).unwrap();
    let (begin, end) = ("<!-- iam-policy: begin -->\n", "\n<!-- iam-policy: end -->");
    let start = readme.find(begin).expect("docs/permissions.md has the generated section") + begin.len();
    let stop = readme[start..].find(end).expect("the section ends") + start;
    assert_eq!(readme[start..stop], expected, "regenerate docs/permissions.md with the command it shows");
    let command = format!("ecs-deploy-action iam-policy --offline {}", shell_words(README_EXAMPLE));
    assert!(readme.contains(&command), "docs/permissions.md shows the command it was generated with:\n{command}");
}

fn shell_words(flags: &[&str]) -> String {
    let quote = |f: &&str| if f.contains([' ', '%', '<']) { format!("'{f}'") } else { f.to_string() };
    flags.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// IAM's StringEquals on the token's claims, as STS evaluates a web-identity trust policy.
fn trusts(policy: &str, claims: &Value) -> bool {
    let policy: Value = serde_json::from_str(policy).unwrap();
    let statement = &policy["Statement"][0];
    let federated = statement["Principal"]["Federated"].as_str().unwrap();
    let issuer = claims["iss"].as_str().unwrap().trim_start_matches("https://");
    let conditions = statement["Condition"]["StringEquals"].as_object().unwrap();
    statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        && federated.ends_with(&format!(":oidc-provider/{issuer}"))
        && conditions.iter().all(|(key, want)| {
            let claim = key.strip_prefix(&format!("{issuer}:")).unwrap_or_else(|| panic!("key {key}"));
            claims[claim] == *want
        })
}

#[test]
fn the_trust_policy_admits_githubs_token_for_that_repository_and_environment_only() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/resources/github/oidc-token-claims.json");
    let token: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let prod = Subject::Environment("prod".into());
    let policy = trust::document("aws", "123456789012", "octo-org/octo-repo", &prod, "sts.amazonaws.com");
    assert!(trusts(&policy, &token), "{policy}");
    let staging = Subject::Environment("staging".into());
    let other_env = trust::document("aws", "123456789012", "octo-org/octo-repo", &staging, "sts.amazonaws.com");
    assert!(!trusts(&other_env, &token));
    let other_repo = trust::document("aws", "123456789012", "octo-org/other", &prod, "sts.amazonaws.com");
    assert!(!trusts(&other_repo, &token));
    let other_audience =
        trust::document("aws", "123456789012", "octo-org/octo-repo", &prod, "https://github.com/octo-org");
    assert!(!trusts(&other_audience, &token));
    // A job without `environment:` gets `ref:` in its sub.
    let mut on_main = token.clone();
    on_main["sub"] = "repo:octo-org/octo-repo:ref:refs/heads/main".into();
    let main =
        trust::document("aws", "123456789012", "octo-org/octo-repo", &Subject::git_ref("main"), "sts.amazonaws.com");
    assert!(trusts(&main, &on_main) && !trusts(&main, &token));
    assert!(trust::repository("octo-org").is_err() && trust::repository("octo org/x").is_err());
}
