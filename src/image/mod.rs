//! The image stage: make sure the image to deploy is in the registry, and know it by digest. A tag
//! that already exists is neither built nor pushed, so a re-run costs one HEAD request.

pub mod context;
pub mod docker;
pub mod registry;

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::{Result, anyhow};
use aws_sdk_ecs::primitives::{DateTime, DateTimeFormat};

use crate::aws::Aws;
use crate::config::BuildSettings;
use crate::gha::Gha;
use crate::plan::ImagePlan;

/// The image the service will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `registry/repository@sha256:…`, or the given reference when no digest is known.
    pub uri: String,
    pub digest: Option<String>,
    pub built: bool,
}

/// Ensures the planned image exists; builds and pushes it when its tag is not in the registry yet.
pub async fn ensure(
    plan: &ImagePlan,
    build: Option<&BuildSettings>,
    labels: HashMap<String, String>,
    aws: &Aws,
    gha: &Gha,
) -> Result<Image> {
    let (registry_host, repository, tag) = match plan {
        ImagePlan::Existing { uri } => {
            let digest = uri.split_once('@').map(|(_, d)| d.to_string());
            if digest.is_none() {
                gha.warning(&format!(
                    "`image` {uri} has no digest: ECS resolves the tag when tasks start, so a moved tag changes what runs; pin it as repo@sha256:…"
                ));
            }
            return Ok(Image { uri: uri.clone(), digest, built: false });
        }
        ImagePlan::Build { registry, repository, tag, .. } => (registry, repository, tag),
    };
    let build = build.ok_or_else(|| anyhow!("internal: a build plan without build settings"))?;
    let tagged = plan.reference();
    let auth = registry::ecr_auth(&aws.ecr, registry_host, gha).await?;
    let registry = registry::Registry::new(auth.clone())?;
    if let Some(digest) = registry.digest(repository, tag).await? {
        gha.info(&format!("{tagged} is already in the registry ({digest}): nothing to build or push"));
        return Ok(Image { uri: format!("{registry_host}/{repository}@{digest}"), digest: Some(digest), built: false });
    }

    let engine = docker::connect().await?;
    {
        let _group = gha.group(&format!("Build {tagged}"));
        let context_tar = context::tar(&build.context, &build.dockerfile)?;
        gha.info(&format!(
            "build context: {} ({} KiB after .dockerignore)",
            build.context.display(),
            context_tar.len() / 1024
        ));
        let request = docker::BuildRequest {
            context_tar,
            dockerfile: &build.dockerfile,
            tag: &tagged,
            target: build.target.as_deref(),
            platform: build.platform.as_deref(),
            build_args: &build.build_args,
            labels,
        };
        let id = docker::build(&engine, request, gha).await?;
        gha.info(&format!("built {tagged} ({id})"));
    }
    let summary = {
        let _group = gha.group(&format!("Push {tagged}"));
        docker::push(&engine, &format!("{registry_host}/{repository}"), tag, &auth, gha).await?
    };
    let digest = registry
        .digest(repository, tag)
        .await?
        .ok_or_else(|| anyhow!("pushed {tagged}, but the registry does not list the tag"))?;
    gha.info(&format!(
        "pushed {tagged}: {} layer(s) uploaded, {} already in the registry; digest {digest}",
        summary.pushed, summary.existing
    ));
    Ok(Image { uri: format!("{registry_host}/{repository}@{digest}"), digest: Some(digest), built: true })
}

/// OCI labels for the image: where its source is, which commit, when it was built.
pub fn oci_labels(var: impl Fn(&str) -> Option<String>, tag: &str, now: SystemTime) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    if let (Some(server), Some(repo)) = (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
        labels.insert("org.opencontainers.image.source".into(), format!("{server}/{repo}"));
    }
    labels.insert("org.opencontainers.image.revision".into(), var("GITHUB_SHA").unwrap_or_else(|| tag.to_string()));
    if let Ok(created) = DateTime::from(now).fmt(DateTimeFormat::DateTime) {
        labels.insert("org.opencontainers.image.created".into(), created);
    }
    labels
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn labels_name_source_revision_and_time() {
        let vars = |k: &str| match k {
            "GITHUB_SERVER_URL" => Some("https://github.com".to_string()),
            "GITHUB_REPOSITORY" => Some("org/app".to_string()),
            "GITHUB_SHA" => Some("abc123".to_string()),
            _ => None,
        };
        let labels = oci_labels(vars, "v1", SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(labels["org.opencontainers.image.source"], "https://github.com/org/app");
        assert_eq!(labels["org.opencontainers.image.revision"], "abc123");
        assert_eq!(labels["org.opencontainers.image.created"], "2023-11-14T22:13:20Z");
        let local = oci_labels(|_| None, "v1", SystemTime::UNIX_EPOCH);
        assert_eq!(local["org.opencontainers.image.revision"], "v1");
        assert!(!local.contains_key("org.opencontainers.image.source"));
    }
}
