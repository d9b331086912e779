//! Status where people look: the pull-request comment (one per service, edited in place at each
//! stage and step), a GitHub Deployment with its statuses, the job summary, and `comment-url`.
//! Best effort: a GitHub failure is one warning with a hint, never a failed or blocked deploy.

mod event;
pub(crate) mod github;
pub(crate) mod markdown;
mod preview;
pub(crate) mod sink;
mod task;

use std::time::Duration;

use github::{Comment, GitHub, explain};
use markdown::{ReportView, Status};
pub(crate) use preview::preview_closed;
pub(crate) use task::Running;
use task::Update;

use crate::config::{Config, ReportSettings, Strategy, steps};
use crate::gha::Gha;
pub(crate) use crate::workflow_run::GitHubContext;

/// Starts the report of a run that deploys a service (none for a build-only run): its comment,
/// Deployment and summary follow the run's events from here to `Running::finish`.
pub(crate) fn start(config: &Config, var: &impl Fn(&str) -> Option<String>, gha: &Gha) -> Option<Running> {
    let settings = config.deploy.as_ref()?;
    let strategy = match &settings.strategy {
        Strategy::Rolling => "rolling".to_string(),
        Strategy::Canary(c) => format!("canary {}", steps::format(&c.steps)),
        // The plan says which (rolling, or ECS's own strategy) once it has read the service.
        Strategy::Ecs(_) => "as the service is set up".to_string(),
    };
    let ctx = GitHubContext::from_env(var);
    // A preview's comment is its own: it says where the preview answers, and goes when it goes.
    let service = match &settings.preview {
        Some(p) => crate::plan::preview::service_name(&settings.service, p.number),
        None => settings.service.clone(),
    };
    let view = ReportView {
        cluster: settings.cluster.clone(),
        service,
        region: config.aws.region.clone(),
        status: Status::InProgress("planning".into()),
        strategy,
        image: None,
        image_build: None,
        revision: None,
        previous: None,
        steps: Vec::new(),
        events: Vec::new(),
        plan: None,
        gates: None,
        stopped: Vec::new(),
        services: Vec::new(),
        run_url: ctx.run_url.clone(),
        left: None,
        url: None,
    };
    Some(task::spawn(gha, &config.report, ctx, view, !config.dry_run))
}

/// Where the comment goes, from the event's payload.
fn target(ctx: &GitHubContext) -> event::Target {
    let payload = ctx
        .event_path
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    event::target(ctx.event_name.as_deref(), payload.as_ref())
}

pub(crate) struct Reporter {
    github: Option<GitHub>,
    /// The pull requests to comment on, with our comment on each once known.
    comments: Vec<(u64, Option<Comment>)>,
    /// Pull requests whose comment create failed: looked up again before the next create.
    lost: std::collections::HashSet<u64>,
    /// Pull requests GitHub will not let us comment on (401, 403, 404): not asked again.
    refused: std::collections::HashSet<u64>,
    deployment: Option<u64>,
    settings: ReportSettings,
    ctx: GitHubContext,
    last_body: Option<String>,
    view: ReportView,
    pub(crate) comment_url: Option<String>,
}

/// GitHub calls never hold a deploy up for long.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

impl Reporter {
    /// Finds the pull requests and this service's comment on them, and creates the Deployment
    /// (`deploying`: a real run, not a dry run). Every failure is a warning.
    async fn start(
        gha: &Gha,
        settings: &ReportSettings,
        ctx: GitHubContext,
        view: ReportView,
        deploying: bool,
    ) -> Self {
        let mut reporter = Reporter {
            github: None,
            comments: Vec::new(),
            lost: std::collections::HashSet::new(),
            refused: std::collections::HashSet::new(),
            deployment: None,
            settings: settings.clone(),
            ctx,
            last_body: None,
            view,
            comment_url: None,
        };
        let (Some(token), Some(repo)) = (&settings.github_token, reporter.ctx.repository.clone()) else {
            return reporter;
        };
        match GitHub::new(&reporter.ctx.api_url, token, &repo) {
            Ok(github) => reporter.github = Some(github),
            Err(e) => {
                gha.warning(&format!("no pull-request comment or Deployment: {e:#}"));
                return reporter;
            }
        }
        let Some(github) = &reporter.github else { return reporter };
        let target = target(&reporter.ctx);
        if settings.pr_comment {
            let pulls = match (&target, &reporter.ctx.sha) {
                (event::Target::PullRequest { number, .. }, _) => Ok(vec![*number]),
                (event::Target::PullsOfCommit, Some(sha)) => {
                    match tokio::time::timeout(CALL_TIMEOUT, github.pulls_for_commit(sha)).await {
                        Ok(r) => r.map_err(|e| explain(&e, "pull-requests: read")),
                        Err(_) => Err("GitHub did not answer within 20s".into()),
                    }
                }
                _ => Ok(Vec::new()),
            };
            match pulls {
                Ok(pulls) if !pulls.is_empty() => {
                    let me = github.me().await;
                    let marker = markdown::marker(&reporter.view.cluster, &reporter.view.service);
                    for pr in pulls {
                        match tokio::time::timeout(CALL_TIMEOUT, github.find_comment(pr, &marker, me.as_deref())).await
                        {
                            Ok(Ok(found)) => reporter.comments.push((pr, found)),
                            Ok(Err(e)) => gha.warning(&format!(
                                "cannot read the comments of #{pr}: {}",
                                explain(&e, "pull-requests: write")
                            )),
                            Err(_) => gha.warning(&format!("cannot read the comments of #{pr}: GitHub did not answer")),
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => gha.warning(&format!("cannot find the pull request of this commit: {e}")),
            }
        }
        if let (true, Some(environment)) = (deploying, settings.deployment_environment.clone()) {
            let head = match target {
                event::Target::PullRequest { head, .. } => head,
                _ => None,
            };
            // The pull request's head from the event, else the commit checked out and built.
            let sha = head.or_else(|| reporter.ctx.built.clone());
            if let Some(sha) = sha {
                let description = format!("ecs-deploy-action: {}/{}", reporter.view.cluster, reporter.view.service);
                match tokio::time::timeout(CALL_TIMEOUT, github.create_deployment(&sha, &environment, &description))
                    .await
                {
                    Ok(Ok(id)) => {
                        reporter.deployment = Some(id);
                        reporter.deployment_status(gha, "in_progress").await;
                    }
                    Ok(Err(e)) => gha.warning(&format!("no GitHub Deployment: {}", explain(&e, "deployments: write"))),
                    Err(_) => gha.warning("no GitHub Deployment: GitHub did not answer"),
                }
            }
        }
        reporter
    }

    /// Takes one update into the view; true when it asks for the comment to be published (a new
    /// stage or step, another service's state), as opposed to what the final comment shows.
    fn apply(&mut self, update: Update) -> bool {
        let view = &mut self.view;
        match update {
            Update::Planned { previous, plan, gates, strategy, url } => {
                if url.is_some() {
                    self.settings.environment_url = url.clone();
                }
                view.url = url;
                view.strategy = strategy;
                view.previous = Some(previous);
                view.plan = plan;
                view.gates = gates;
            }
            Update::Image(uri, build) => (view.image, view.image_build) = (Some(uri), build),
            // The first service's revision heads the comment; every other one is a row of its own.
            Update::Registered { service, revision, .. } if service == view.service => view.revision = Some(revision),
            Update::Registered { service, revision, previous } => {
                view.services.push(markdown::ServiceRow { service, revision, previous, state: "waiting".into() });
            }
            Update::ServiceState { service, state } => {
                if let Some(row) = view.services.iter_mut().find(|r| r.service == service) {
                    row.state = state;
                }
                return true;
            }
            Update::Progress { what, steps } => {
                view.status = Status::InProgress(what);
                if let Some(steps) = steps {
                    view.steps = steps;
                }
                return true;
            }
            Update::Stopped(tasks) => view.stopped = tasks,
            Update::Deployed { steps, events } => {
                view.steps = steps;
                view.events = events;
            }
            Update::Finish(status, left) => {
                view.status = status;
                view.left = left;
            }
        }
        false
    }

    /// After SIGINT/SIGTERM GitHub hears only the run's end: the job is killed 10 s after the first
    /// signal, and no comment or Deployment update may stand between the abort's traffic call and
    /// the rest of the undo. The view keeps up; `finish` publishes it.
    async fn publish_unless_cancelled(&mut self, gha: &Gha) {
        if !*crate::signals::cancelled().borrow() {
            self.publish(gha).await;
        }
    }

    async fn publish(&mut self, gha: &Gha) {
        // Secrets never reach the comment either: whatever the run masked is redacted here too.
        let body = gha.redact(&markdown::render(&self.view));
        if self.last_body.as_deref() == Some(body.as_str()) {
            return;
        }
        let Some(github) = &self.github else { return };
        let marker = markdown::marker(&self.view.cluster, &self.view.service);
        let mut all_sent = true;
        let mut refused = std::mem::take(&mut self.refused);
        for (pr, comment) in &mut self.comments {
            if refused.contains(pr) {
                continue;
            }
            // A create that failed may have landed all the same (a timeout): look before creating again.
            if comment.is_none() && self.lost.contains(pr) {
                let me = github.me().await;
                if let Ok(Ok(found)) =
                    tokio::time::timeout(CALL_TIMEOUT, github.find_comment(*pr, &marker, me.as_deref())).await
                {
                    *comment = found;
                }
            }
            let result = match comment {
                Some(c) => tokio::time::timeout(CALL_TIMEOUT, github.update_comment(c.id, &body)).await,
                None => tokio::time::timeout(CALL_TIMEOUT, github.create_comment(*pr, &body)).await,
            };
            let failed = match result {
                Ok(Ok(c)) => {
                    self.comment_url.get_or_insert_with(|| c.html_url.clone());
                    *comment = Some(c);
                    self.lost.remove(pr);
                    continue;
                }
                Ok(Err(e)) if github::is_permanent(&e) => {
                    // Asking again cannot help (a missing permission): one warning, no more tries.
                    gha.warning(&format!("cannot comment on #{pr}: {}", explain(&e, "pull-requests: write")));
                    refused.insert(*pr);
                    continue;
                }
                Ok(Err(e)) => format!("cannot comment on #{pr}: {}", explain(&e, "pull-requests: write")),
                Err(_) => format!("cannot comment on #{pr}: GitHub did not answer"),
            };
            // Kept: the next update tries again, and the last one says how the run ended.
            gha.warning(&format!("{failed}; trying again at the next update"));
            if comment.is_none() {
                self.lost.insert(*pr);
            }
            all_sent = false;
        }
        self.refused = refused;
        if all_sent {
            self.last_body = Some(body);
        }
    }

    async fn deployment_status(&mut self, gha: &Gha, state: &str) {
        let (Some(github), Some(id)) = (&self.github, self.deployment) else { return };
        let description = match state {
            "in_progress" => "deploying",
            "success" => "deployed",
            _ => "the deploy did not succeed",
        };
        let call = github.deployment_status(
            id,
            state,
            self.ctx.run_url.as_deref(),
            self.settings.environment_url.as_deref(),
            description,
        );
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(())) => {}
            // The Deployment is kept: its final state is always attempted.
            Ok(Err(e)) => {
                gha.warning(&format!("cannot update the GitHub Deployment: {}", explain(&e, "deployments: write")));
            }
            Err(_) => gha.warning("cannot update the GitHub Deployment: GitHub did not answer"),
        }
    }

    /// The final state (set by `Update::Finish`) everywhere: job summary (first: it needs no network),
    /// comment, Deployment, `comment-url`; without a token (act, local runs) the comment goes to the log.
    async fn finish(&mut self, gha: &Gha) {
        let body = markdown::render(&self.view);
        if let Err(e) = gha.append_summary(&body) {
            gha.warning(&format!("could not write the job summary: {e}"));
        }
        if self.settings.pr_comment && self.settings.github_token.is_none() {
            let _group = gha.group("Report (no github-token: the pull-request comment as it would read)");
            gha.info(&body);
        }
        self.publish(gha).await;
        let state = match &self.view.status {
            Status::Ended(outcome) => outcome.deployment_state(),
            Status::Planned | Status::InProgress(_) => "failure",
        };
        self.deployment_status(gha, state).await;
        if let Err(e) = gha.set_output("comment-url", self.comment_url.as_deref().unwrap_or_default()) {
            gha.warning(&format!("could not set output `comment-url`: {e}"));
        }
    }
}
