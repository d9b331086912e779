//! A closed pull request's preview on GitHub: its comment (when it has one) says what was removed or
//! why not all of it, and its Deployments become inactive. Best effort, as every report.

use super::github::{GitHub, explain};
use super::{CALL_TIMEOUT, GitHubContext, markdown};
use crate::config::Config;
use crate::gha::Gha;

/// A closed pull request's preview removed (`Ok`: what went) or not (`Err`: why): its comment says
/// so (when there is one), and its Deployments become inactive. Best effort, as every report.
pub(crate) async fn preview_closed(
    config: &Config,
    var: &impl Fn(&str) -> Option<String>,
    gha: &Gha,
    removed: Option<Result<Vec<String>, String>>,
) {
    let Some((d, p)) = config.deploy.as_ref().and_then(|d| d.preview.as_ref().map(|p| (d, p))) else { return };
    let ctx = GitHubContext::from_env(var);
    let (Some(token), Some(repo)) = (&config.report.github_token, &ctx.repository) else { return };
    let github = match GitHub::new(&ctx.api_url, token, repo) {
        Ok(g) => g,
        Err(e) => return gha.warning(&format!("the pull request's comment and Deployment were not updated: {e:#}")),
    };
    let service = crate::plan::preview::service_name(&d.service, p.number);
    if config.report.pr_comment {
        let marker = markdown::marker(&d.cluster, &service);
        let me = github.me().await;
        match tokio::time::timeout(CALL_TIMEOUT, github.find_comment(p.number, &marker, me.as_deref())).await {
            Ok(Ok(Some(comment))) => {
                let body = gha.redact(&markdown::preview_closed(
                    &d.cluster,
                    &service,
                    removed.as_ref(),
                    ctx.run_url.as_deref(),
                ));
                match tokio::time::timeout(CALL_TIMEOUT, github.update_comment(comment.id, &body)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        gha.warning(&format!("cannot update the comment: {}", explain(&e, "pull-requests: write")))
                    }
                    Err(_) => gha.warning("cannot update the comment: GitHub did not answer"),
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => gha.warning(&format!(
                "cannot read the comments of #{}: {}",
                p.number,
                explain(&e, "pull-requests: write")
            )),
            Err(_) => gha.warning("cannot read the comments: GitHub did not answer"),
        }
    }
    if matches!(removed, Some(Err(_))) {
        return;
    }
    let environment = format!("preview/pr-{}", p.number);
    let ids = match tokio::time::timeout(CALL_TIMEOUT, github.deployments(&environment)).await {
        Ok(Ok(ids)) => ids,
        Ok(Err(e)) => {
            return gha.warning(&format!(
                "cannot read the Deployments of {environment}: {}",
                explain(&e, "deployments: write")
            ));
        }
        Err(_) => return gha.warning("cannot read the Deployments: GitHub did not answer"),
    };
    for id in ids {
        let call = github.deployment_status(
            id,
            "inactive",
            ctx.run_url.as_deref(),
            None,
            "the pull request closed: preview removed",
        );
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                gha.warning(&format!("cannot mark Deployment {id} inactive: {}", explain(&e, "deployments: write")))
            }
            Err(_) => gha.warning("cannot mark the Deployments inactive: GitHub did not answer"),
        }
    }
}
