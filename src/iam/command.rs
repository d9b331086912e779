//! `ecs-deploy-action iam-policy [--offline] [--trust --repository owner/repo (--environment NAME |
//! --ref REF) [--account ID]]` followed by a deploy's own inputs: the policy that deploy needs,
//! resolved from its plan with read-only calls (or from the inputs alone), or the role's trust policy.
//! The JSON goes to stdout, everything else to stderr, so `> policy.json` keeps only the policy.

use std::ffi::OsString;

use anyhow::{Context as _, Result, anyhow, bail};

use super::trust::{self, Subject};
use super::{Scope, document, statements};
use crate::aws::{Aws, ambient_config};
use crate::config::Config;
use crate::credentials::{self, Runner};
use crate::ecs::{stopped, taskdef};
use crate::gha::Gha;
use crate::plan::{self, caller_account};

/// The subcommand's own flags; every other argument is a deploy input.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct IamArgs {
    pub(crate) offline: bool,
    pub(crate) trust: bool,
    pub(crate) repository: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) git_ref: Option<String>,
    pub(crate) account: Option<String>,
    /// `--help`/`-h`: the subcommand's own help, nothing else.
    pub(crate) help: bool,
    /// `--setup`: the policy of `setup` with the flags that follow, instead of a deploy's.
    pub(crate) setup: bool,
    /// `--preview`: the policy of a preview workflow (deploy and removal) with the deploy's flags.
    pub(crate) preview: bool,
    /// With `--preview`: the deploy's `--listener-arn`.
    pub(crate) listener: Option<String>,
}

/// What `iam-policy --help` prints.
pub(crate) const HELP: &str = "\
Prints the IAM policy a deploy needs: the JSON on stdout, everything else on stderr.

Usage: ecs-deploy-action iam-policy [--offline] <the deploy's flags>
       ecs-deploy-action iam-policy --trust --repository OWNER/REPO (--environment NAME | --ref REF) [--account ID]
       ecs-deploy-action iam-policy --setup <setup's flags>

Options:
      --offline                from the inputs alone, no AWS call: the account, the task definition
                               families, the roles and the log groups become wildcards to narrow by hand
                               (without it, they are read from a plan made with your credentials, read-only)
      --trust                  the role's trust policy for GitHub's OIDC provider instead
      --repository OWNER/REPO  with --trust: the repository whose workflows assume the role
      --environment NAME       with --trust: the job's `environment:` (recommended: its rules gate the deploy)
      --ref REF                with --trust: a branch or tag the job runs on, e.g. main
      --account ID             with --trust: the account of the OIDC provider [default: the caller's]
      --preview                the policy of a `preview: true` workflow (deploys and removals of the
                               service's previews) with the deploy's flags, `--listener-arn` included
      --setup                  the policy `ecs-deploy-action setup` needs with the flags that follow
                               (from the flags alone: the listener's ARN names the account)
  -h, --help                   this help

The deploy's flags are those of `ecs-deploy-action --help` (the action's inputs): give the ones the
workflow gives, and the policy covers exactly what that deploy calls.
";

/// `Some` when `args` (program name first) start with `iam-policy`: its flags, and the rest of the
/// arguments as a deploy's.
pub(crate) fn split(args: &[OsString]) -> Result<Option<(IamArgs, Vec<OsString>)>, String> {
    if args.get(1).and_then(|a| a.to_str()) != Some("iam-policy") {
        return Ok(None);
    }
    let mut iam = IamArgs::default();
    let mut rest = vec![args[0].clone()];
    let mut it = args[2..].iter();
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy();
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (text.to_string(), None),
        };
        let mut value = |name: &str| match inline.clone() {
            Some(v) => Ok(v),
            None => it.next().map(|v| v.to_string_lossy().into_owned()).ok_or(format!("{name} needs a value")),
        };
        match flag.as_str() {
            "--offline" => iam.offline = true,
            "--trust" => iam.trust = true,
            "--repository" => iam.repository = Some(value("--repository")?),
            "--environment" => iam.environment = Some(value("--environment")?),
            "--ref" => iam.git_ref = Some(value("--ref")?),
            "--account" => iam.account = Some(value("--account")?),
            "--help" | "-h" => iam.help = true,
            "--setup" => iam.setup = true,
            "--preview" => iam.preview = true,
            "--listener-arn" => {
                let listener = value("--listener-arn")?;
                rest.push("--listener-arn".into());
                rest.push(listener.clone().into());
                iam.listener = Some(listener);
            }
            _ => rest.push(arg.clone()),
        }
    }
    if !iam.trust && (iam.repository.is_some() || iam.environment.is_some() || iam.git_ref.is_some()) {
        return Err("--repository, --environment and --ref belong to --trust".into());
    }
    Ok(Some((iam, rest)))
}

/// The trust policy: `--repository` and exactly one of `--environment` and `--ref`.
pub(crate) async fn trust_policy(iam: &IamArgs, config: Option<&Config>) -> Result<String> {
    let repository = iam.repository.as_deref().ok_or_else(|| {
        anyhow!("--trust needs --repository owner/repo: the repository whose workflows assume the role")
    })?;
    let repository = trust::repository(repository).map_err(|e| anyhow!("--repository: {e}"))?;
    let subject = match (&iam.environment, &iam.git_ref) {
        (Some(env), None) if !env.trim().is_empty() => Subject::Environment(env.trim().to_string()),
        (None, Some(r)) if !r.trim().is_empty() => Subject::git_ref(r),
        (Some(_), Some(_)) => bail!(
            "--environment and --ref both given: a job with `environment:` gets a token for the environment, not the ref; give one"
        ),
        _ => bail!(
            "--trust needs --environment NAME (the job's `environment:`, recommended: its protection rules gate the deploy) or --ref REF (e.g. main)"
        ),
    };
    let region = config.map(|c| c.aws.region.as_str()).unwrap_or("us-east-1");
    let audience = config.map(|c| c.aws.audience.as_str()).unwrap_or("sts.amazonaws.com");
    let account = match (&iam.account, config) {
        (Some(a), _) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => a.clone(),
        (Some(a), _) => bail!("--account `{a}` is not an AWS account id: 12 digits"),
        (None, _) if iam.offline => "ACCOUNT_ID".to_string(),
        (None, Some(c)) => caller_account(&Aws::new(ambient_config(&c.aws).await, None)).await?,
        (None, None) => bail!("--trust without --account needs `aws-region` (to ask STS for the account) or --offline"),
    };
    Ok(trust::document(super::partition(region), &account, &repository, &subject, audience))
}

/// The identity policy of the deploy `config` describes: from its plan, or the inputs alone.
pub(crate) async fn identity_policy(
    iam: &IamArgs,
    config: &Config,
    var: &impl Fn(&str) -> Option<String>,
    gha: &Gha,
) -> Result<String> {
    let scope = if iam.offline { Scope::offline(config) } else { resolve(config, var, gha).await? };
    match (iam.preview, iam.listener.as_deref()) {
        (true, Some(listener)) => Ok(document(&super::preview::statements(config, &scope, listener))),
        (true, None) => Err(anyhow!(
            "--preview needs --listener-arn: the listener the previews' rules are added to (as the workflow's `listener-arn`)"
        )),
        (false, _) => Ok(document(&statements(config, &scope))),
    }
}

/// The scope from the plan, resolved with the run's own credentials and read-only calls.
async fn resolve(config: &Config, var: &impl Fn(&str) -> Option<String>, gha: &Gha) -> Result<Scope> {
    let ambient = ambient_config(&config.aws).await;
    let (_, provider) = credentials::obtain(&config.aws, &ambient, Runner::from_env(var), gha).await?;
    let aws = Aws::new(ambient, provider);
    let account = caller_account(&aws).await?;
    let plan = plan::resolve(config, &aws, gha).await.context("could not resolve the plan the policy is scoped to")?;
    let region = config.aws.region.clone();
    let mut scope = Scope {
        partition: super::partition(&region).into(),
        region,
        account,
        families: Vec::new(),
        roles: Vec::new(),
        log_groups: Vec::new(),
        tagged_revisions: false,
        native: Vec::new(),
    };
    if let Some(d) = &plan.deploy {
        for r in d.services.iter().map(|s| &s.rendered) {
            let td = &r.task_definition;
            push_new(&mut scope.families, taskdef::describe(td).split(':').next().unwrap_or_default().to_string());
            for role in [td.task_role_arn(), td.execution_role_arn()].into_iter().flatten() {
                push_new(&mut scope.roles, role.to_string());
            }
            for (group, _) in stopped::log_config(td).into_values() {
                push_new(&mut scope.log_groups, group);
            }
            // Every registration tags its revision: its own tags and who deploys it (`provenance`).
            scope.tagged_revisions = true;
        }
        for s in d.services.iter().filter(|s| s.strategy.native().is_some()) {
            scope.native.push(s.service.clone());
        }
    }
    Ok(scope)
}

fn push_new(list: &mut Vec<String>, value: String) {
    if !value.is_empty() && !list.contains(&value) {
        list.push(value);
        list.sort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_subcommand_takes_its_own_flags_and_leaves_the_deploy_inputs() {
        assert_eq!(split(&args(&["x", "--cluster", "prod"])), Ok(None));
        let (iam, rest) =
            split(&args(&["x", "iam-policy", "--offline", "--cluster=prod", "--service", "web"])).unwrap().unwrap();
        assert!(iam.offline && !iam.trust);
        assert_eq!(rest, args(&["x", "--cluster=prod", "--service", "web"]));
        let (iam, _) = split(&args(&["x", "iam-policy", "--trust", "--repository=o/r", "--environment", "prod"]))
            .unwrap()
            .unwrap();
        assert_eq!((iam.repository.as_deref(), iam.environment.as_deref()), (Some("o/r"), Some("prod")));
        assert!(split(&args(&["x", "iam-policy", "--repository", "o/r"])).unwrap_err().contains("--trust"));
        assert!(split(&args(&["x", "iam-policy", "--trust", "--ref"])).unwrap_err().contains("needs a value"));
    }
}
