//! `ecs-deploy-action previews prune`: the previews a missed `closed` event left running, removed.
//! A preview goes when its pull request is closed (asked of GitHub when a token is at hand) or when
//! it is older than `--older-than`; only previews of this repository, found by their tags.

use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use crate::aws::{Aws, ambient_config};
use crate::config::AwsSettings;
use crate::ecs::copies;
use crate::gha::Gha;
use crate::outcome::ExitStatus;
use crate::plan::preview::{PREVIEW_OF, PULL_REQUEST, REPOSITORY};
use crate::report::github::GitHub;
use crate::secret::Secret;

/// What `previews prune --help` prints.
pub(crate) const HELP: &str = "\
Removes pull-request previews left behind: those whose pull request is closed (asked of GitHub with
--github-token or $GITHUB_TOKEN) and those older than --older-than. Only previews of --repository
(default $GITHUB_REPOSITORY) are looked at, found by their tags; each goes as on its pull request's
`closed` event: its listener rule first, then its service, target group and revisions.

Usage: ecs-deploy-action previews prune --cluster CLUSTER [--service SERVICE] --older-than AGE
                                        [--dry-run]

Options:
      --cluster NAME            the cluster of the previews
      --service NAME            only the previews of this service [default: every service's]
      --older-than AGE          remove a preview older than this, e.g. 3d, 12h [default: only closed PRs']
      --repository OWNER/NAME   [default: $GITHUB_REPOSITORY]
      --github-token TOKEN      to ask GitHub which pull requests are closed [default: $GITHUB_TOKEN]
      --dry-run                 say what would be removed, remove nothing
      --aws-region REGION       [default: $AWS_REGION, else $AWS_DEFAULT_REGION]
      --aws-endpoint-url URL    another endpoint for every AWS service (a local emulator)
  -h, --help                    this help
";

struct Args {
    cluster: String,
    service: Option<String>,
    older_than: Option<Duration>,
    repository: String,
    token: Option<Secret>,
    dry_run: bool,
    region: String,
    endpoint_url: Option<String>,
}

/// `previews prune` with `args` (after the words `previews prune`).
pub(crate) async fn run(args: &[OsString], var: &impl Fn(&str) -> Option<String>, gha: &Gha) -> ExitStatus {
    let args = match parse(args, var) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return ExitStatus::Success;
        }
        Err(errors) => {
            for e in &errors {
                gha.error("Invalid input", &format!("previews prune: {e}"));
            }
            gha.info("Nothing was called or changed. `ecs-deploy-action previews prune --help` lists the flags.");
            return ExitStatus::InvalidInput;
        }
    };
    if let Some(token) = &args.token {
        gha.mask(token.expose());
    }
    let settings = AwsSettings {
        region: args.region.clone(),
        role_to_assume: None,
        audience: "sts.amazonaws.com".into(),
        role_session_name: "ecs-deploy-action-prune".into(),
        role_duration: Duration::from_secs(3600),
        endpoint_url: args.endpoint_url.clone(),
    };
    let aws = Aws::new(ambient_config(&settings).await, None);
    match prune(&aws, &args, var, gha).await {
        Ok(0) => {
            gha.notice("Previews", "nothing to prune");
            ExitStatus::Success
        }
        Ok(n) => {
            let verb = if args.dry_run { "would be removed (dry run)" } else { "removed" };
            gha.notice("Previews", &format!("{n} preview{} {verb}", if n == 1 { "" } else { "s" }));
            ExitStatus::Success
        }
        Err(e) => {
            gha.error("Prune failed", &format!("{e:#}"));
            ExitStatus::Failed
        }
    }
}

async fn prune(aws: &Aws, args: &Args, var: &impl Fn(&str) -> Option<String>, gha: &Gha) -> anyhow::Result<usize> {
    let previews = copies::tagged(&aws.ecs, &args.cluster, PREVIEW_OF, args.service.as_deref()).await?;
    let api = var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
    let github = args.token.as_ref().and_then(|t| GitHub::new(&api, t, &args.repository).ok());
    if github.is_none() && args.older_than.is_none() {
        anyhow::bail!(
            "neither a GitHub token (to ask which pull requests are closed) nor --older-than: nothing could be judged stale"
        );
    }
    let mut pruned = 0;
    for service in previews.iter().filter(|s| copies::tag(s, REPOSITORY) == Some(args.repository.as_str())) {
        let name = service.service_name().unwrap_or_default();
        let (Some(base), Some(number)) =
            (copies::tag(service, PREVIEW_OF), copies::tag(service, PULL_REQUEST).and_then(|n| n.parse::<u64>().ok()))
        else {
            continue;
        };
        let age = service
            .created_at()
            .and_then(|t| SystemTime::try_from(*t).ok())
            .and_then(|t| SystemTime::now().duration_since(t).ok());
        let closed = match &github {
            Some(g) => match g.pull_state(number).await {
                Ok(state) => state == "closed",
                Err(e) => {
                    gha.warning(&format!(
                        "{name}: could not ask GitHub about #{number} ({}); judged by age only",
                        crate::report::github::explain(&e, "pull-requests: read")
                    ));
                    false
                }
            },
            None => false,
        };
        let old = matches!((age, args.older_than), (Some(age), Some(limit)) if age > limit);
        let why = match (closed, old) {
            (true, _) => format!("#{number} is closed"),
            (false, true) => {
                format!("older than {}", crate::config::duration::format(args.older_than.unwrap_or_default()))
            }
            (false, false) => continue,
        };
        let which = super::teardown::Which {
            cluster: &args.cluster,
            base,
            number,
            repository: &args.repository,
            listener: None,
        };
        let found = super::teardown::find(aws, &which).await?;
        gha.info(&format!("{name} ({why}): {}", found.describe().join(", ")));
        pruned += 1;
        if !args.dry_run {
            super::teardown::remove(aws, &args.cluster, found, gha).await?;
        }
    }
    Ok(pruned)
}

/// The flags; `Ok(None)` for `--help`. Every problem at once.
fn parse(args: &[OsString], var: &impl Fn(&str) -> Option<String>) -> Result<Option<Args>, Vec<String>> {
    let valued = [
        "--cluster",
        "--service",
        "--older-than",
        "--repository",
        "--github-token",
        "--aws-region",
        "--aws-endpoint-url",
    ];
    let flags = crate::flags::scan(args, &valued, &["--dry-run"], "previews prune");
    if flags.help {
        return Ok(None);
    }
    let (dry_run, mut errors) = (flags.switch("--dry-run"), flags.errors.clone());
    let value = |name: &str| flags.value(name);
    let cluster = value("--cluster");
    if cluster.is_none() {
        errors.push("--cluster is required: the cluster of the previews".into());
    }
    let older_than = value("--older-than").and_then(|v| match age(&v) {
        Some(d) => Some(d),
        None => {
            errors.push(format!("--older-than `{v}` is not an age: e.g. 3d, 12h, 90m"));
            None
        }
    });
    let repository = value("--repository").or_else(|| var("GITHUB_REPOSITORY"));
    if repository.is_none() {
        errors.push("--repository is required outside Actions (or GITHUB_REPOSITORY): whose previews to prune".into());
    }
    let region = value("--aws-region").or_else(|| var("AWS_REGION")).or_else(|| var("AWS_DEFAULT_REGION"));
    if region.as_deref().is_none_or(str::is_empty) {
        errors.push("--aws-region is required (or AWS_REGION in the environment)".into());
    }
    match (cluster, repository, region) {
        (Some(cluster), Some(repository), Some(region)) if errors.is_empty() => Ok(Some(Args {
            cluster,
            service: value("--service"),
            older_than,
            repository,
            token: value("--github-token").or_else(|| var("GITHUB_TOKEN")).map(Secret::new),
            dry_run,
            region,
            endpoint_url: value("--aws-endpoint-url").or_else(|| var("AWS_ENDPOINT_URL")),
        })),
        _ => Err(errors),
    }
}

/// `3d`, `12h`, `90m`, or a duration the inputs take (`1h30m`).
fn age(v: &str) -> Option<Duration> {
    match v.strip_suffix('d').and_then(|n| n.parse::<u64>().ok()) {
        Some(days) => Some(Duration::from_secs(days * 86_400)),
        None => crate::config::duration::parse(v).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_in_days_hours_or_minutes() {
        assert_eq!(age("3d"), Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(age("12h"), Some(Duration::from_secs(12 * 3_600)));
        assert_eq!(age("90m"), Some(Duration::from_secs(90 * 60)));
        assert_eq!(age("soon"), None);
    }

    #[test]
    fn every_problem_is_said_at_once() {
        let errors = parse(&["--older-than".into(), "soon".into()], &|_| None).err().unwrap();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("--cluster is required")), "{errors:?}");
    }
}
