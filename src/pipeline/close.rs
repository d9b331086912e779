//! A pull request closed: its preview removed (its rule first, then its service, target group and
//! revisions), its GitHub Deployments marked inactive, its comment saying so. Nothing is built or
//! registered; a dry run lists what would go.

use crate::aws::{Aws, ambient_config};
use crate::config::Config;
use crate::credentials::{self, Runner};
use crate::gha::Gha;
use crate::outcome::ExitStatus;
use crate::preview::teardown::{self, Which};

/// Removes the preview of the pull request the run's event closed.
pub(crate) async fn close_preview(config: &Config, var: &impl Fn(&str) -> Option<String>, gha: &Gha) -> ExitStatus {
    let Some((d, p)) = config.deploy.as_ref().and_then(|d| d.preview.as_ref().map(|p| (d, p))) else {
        return ExitStatus::Success;
    };
    let ambient = ambient_config(&config.aws).await;
    let obtained = {
        let _group = gha.group("Credentials");
        credentials::obtain(&config.aws, &ambient, Runner::from_env(var), gha).await
    };
    let aws = match obtained {
        Ok((_, provider)) => Aws::new(ambient, provider),
        Err(e) => {
            gha.error("Could not get AWS credentials", &format!("{e:#}"));
            gha.info("The preview was not removed: run again once credentials work (nothing was changed).");
            return ExitStatus::Failed;
        }
    };
    let which = Which {
        cluster: &d.cluster,
        base: &d.service,
        number: p.number,
        repository: &p.repository,
        listener: Some(&p.listener_arn),
    };
    let found = match teardown::find(&aws, &which).await {
        Ok(found) => found,
        Err(e) => {
            gha.error("Preview not removed", &with_hint(format!("{e:#}")));
            gha.info("Nothing was changed.");
            return ExitStatus::Failed;
        }
    };
    if found.is_empty() {
        gha.info(&format!("pull request #{} closed: nothing of its preview is left to remove", p.number));
    } else {
        let verb = if config.dry_run { "would remove" } else { "removing" };
        gha.info(&format!("pull request #{} closed: {verb} {}", p.number, found.describe().join(", ")));
    }
    if config.dry_run {
        gha.info("DRY RUN OK: nothing was removed.");
        crate::pipeline::output(gha, "status", "planned");
        return ExitStatus::Success;
    }
    let result = teardown::remove(&aws, &d.cluster, found, gha).await;
    let text = match &result {
        Ok(removed) if removed.is_empty() => None,
        Ok(removed) => Some(Ok(removed.clone())),
        Err(e) => Some(Err(format!("{e:#}"))),
    };
    crate::report::preview_closed(config, var, gha, text).await;
    match result {
        Ok(_) => {
            gha.notice("Preview removed", &format!("the preview of #{} is gone", p.number));
            crate::pipeline::output(gha, "status", "removed");
            ExitStatus::Success
        }
        Err(e) => {
            gha.error("Preview not fully removed", &with_hint(format!("{e:#}")));
            crate::pipeline::output(gha, "status", "failed");
            ExitStatus::Failed
        }
    }
}

fn with_hint(message: String) -> String {
    if message.contains("AccessDenied") || message.contains("is not authorized to perform") {
        format!("{message}\nhint: `ecs-deploy-action iam-policy --preview` prints what previews need")
    } else {
        message
    }
}
