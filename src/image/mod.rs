//! The image stage: make sure the image to deploy is in the registry, and know it by digest. A tag
//! that already holds this commit's image is neither built nor pushed, so a re-run costs two reads;
//! a build goes to BuildKit when the engine offers it, with its cache kept in the registry.

pub(crate) mod buildkit;
pub(crate) mod context;
pub(crate) mod docker;
pub(crate) mod registry;

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::{Result, anyhow, bail};
use aws_sdk_ecs::primitives::{DateTime, DateTimeFormat};

use crate::aws::Aws;
use crate::config::{BuildSettings, Builder};
use crate::gha::Gha;
use crate::plan::ImagePlan;

/// The image the service will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    /// `registry/repository@sha256:…`, or the given reference when no digest is known.
    pub(crate) uri: String,
    pub(crate) digest: Option<String>,
    pub(crate) built: bool,
    /// How this run built it, for the summary (`built with BuildKit in 44.0s: 6 step(s), 4 from cache`).
    pub(crate) build: Option<String>,
}

/// Ensures the planned image exists; builds and pushes it when its tag is not in the registry yet
/// (or holds another commit's image). `replaced`: the image the service runs now, whose cache a
/// build may reuse too.
pub(crate) async fn ensure(
    plan: &ImagePlan,
    build: Option<&BuildSettings>,
    labels: HashMap<String, String>,
    replaced: Option<&str>,
    aws: &Aws,
    gha: &Gha,
) -> Result<Image> {
    let (registry_host, repository, tag) = match plan {
        ImagePlan::Existing { uri, registry } => return pin(uri, registry.as_deref(), aws, gha).await,
        ImagePlan::AsRegistered { uri } => {
            let digest = uri.split_once('@').map(|(_, d)| d.to_string());
            return Ok(Image { uri: uri.clone(), digest, built: false, build: None });
        }
        ImagePlan::Build { registry, repository, tag, .. } => (registry, repository, tag),
    };
    let build = build.ok_or_else(|| anyhow!("internal: a build plan without build settings"))?;
    let target = Target { host: registry_host, repository, tag, tagged: plan.reference() };
    // The build's registry is ECR's endpoint, or the explicit `registry`: ECR's token belongs there.
    let auth = registry::ecr_auth(&aws.ecr, registry_host, gha).await?;
    let registry = registry::Registry::new(registry_host, Some(auth.clone()))?;
    if let Some(image) = reusable(&registry, &target, build, aws, gha).await? {
        return Ok(image);
    }
    let engine = docker::connect().await?;
    let api = engine.version().await.ok().and_then(|v| v.api_version).unwrap_or_default();
    let buildkit = build.builder == Builder::Auto && buildkit::offers_buildkit(&api);
    let how = {
        let _group = gha.group(&format!("Build {}", target.tagged));
        build_image(&engine, &api, buildkit, &target, build, labels, replaced, &auth, gha).await?
    };
    let summary = {
        let _group = gha.group(&format!("Push {}", target.tagged));
        push_tags(&engine, buildkit, &target, build, &auth, gha).await?
    };
    let tagged = &target.tagged;
    let digest = registry
        .digest(repository, tag)
        .await?
        .ok_or_else(|| anyhow!("pushed {tagged}, but the registry does not list the tag"))?;
    gha.info(&format!(
        "pushed {tagged}: {} layer(s) uploaded, {} already in the registry; digest {digest}",
        summary.pushed, summary.existing
    ));
    Ok(Image {
        uri: format!("{registry_host}/{repository}@{digest}"),
        digest: Some(digest),
        built: true,
        build: Some(how),
    })
}

/// Where a build goes.
struct Target<'a> {
    host: &'a str,
    repository: &'a str,
    tag: &'a str,
    /// `host/repository:tag`.
    tagged: String,
}

impl Target<'_> {
    /// `host/repository`.
    fn name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }
}

/// The image already under the tag, when it is known to come from the same source (its revision
/// label is what this run builds); None when it must be built. A moving tag (`latest`) from another
/// commit is rebuilt, not redeployed; in an immutable-tag repository it is refused.
async fn reusable(
    registry: &registry::Registry,
    target: &Target<'_>,
    build: &BuildSettings,
    aws: &Aws,
    gha: &Gha,
) -> Result<Option<Image>> {
    let (repository, tagged) = (target.repository, &target.tagged);
    let Some(digest) = registry.digest(repository, target.tag).await? else { return Ok(None) };
    let revision = registry.revision(repository, target.tag).await.unwrap_or_else(|e| {
        gha.warning(&format!("could not read {tagged}'s revision label ({e:#}): rebuilding it"));
        None
    });
    if revision.as_deref() == Some(build.source.as_str()) {
        gha.info(&format!(
            "{tagged} is already in the registry ({digest}), built from {}: nothing to build or push",
            build.source
        ));
        let uri = format!("{}@{digest}", target.name());
        return Ok(Some(Image { uri, digest: Some(digest), built: false, build: None }));
    }
    let was = revision.map(|r| format!("built from {r}")).unwrap_or_else(|| "with no revision label".into());
    if registry::tags_are_immutable(&aws.ecr, repository).await {
        bail!(
            "{tagged} already holds another image ({was}, not {}) and the ECR repository `{repository}` has \
             immutable tags, so it cannot move: give each commit its own tag (the default `tags`, the commit) \
             or make the tags mutable",
            build.source
        );
    }
    gha.info(&format!("{tagged} holds an image {was}, not {}: rebuilding; the tag moves", build.source));
    Ok(None)
}

/// Builds the image with BuildKit (`buildkit`) or the classic builder; says how, for the summary.
#[expect(clippy::too_many_arguments, reason = "one build's inputs, each used once")]
async fn build_image(
    engine: &bollard::Docker,
    api: &str,
    buildkit: bool,
    target: &Target<'_>,
    build: &BuildSettings,
    mut labels: HashMap<String, String>,
    replaced: Option<&str>,
    auth: &registry::RegistryAuth,
    gha: &Gha,
) -> Result<String> {
    let tagged = &target.tagged;
    let context_tar = context::tar(&build.context, &build.dockerfile)?;
    gha.info(&format!(
        "build context: {} ({} KiB after .dockerignore)",
        build.context.display(),
        context_tar.len() / 1024
    ));
    labels.insert("org.opencontainers.image.version".into(), target.tag.to_string());
    labels.extend(build.labels.iter().cloned());
    let request = docker::BuildRequest {
        context_tar,
        dockerfile: &build.dockerfile,
        tag: tagged,
        target: build.target.as_deref(),
        platform: build.platform.as_deref(),
        build_args: &build.build_args,
        labels,
        no_cache: build.no_cache,
        pull: build.pull,
    };
    if buildkit {
        // The build cache lives in the repository (by default under one tag): each BuildKit build
        // reads it and the push writes it (inline cache), so a runner whose engine never saw the
        // image reuses every layer above what changed. The image being replaced carries its
        // build's inline cache too (same repository only: the session has credentials for it).
        let name = target.name();
        let reference = |r: &String| if r.contains('/') { r.clone() } else { format!("{name}:{r}") };
        let mut cache_from: Vec<String> = build.cache_from.iter().map(reference).collect();
        cache_from.extend(replaced.filter(|r| r.starts_with(&name)).map(str::to_string));
        if build.no_cache {
            cache_from.clear();
        }
        let provided = buildkit::session::Provided {
            secrets: build.secrets.iter().cloned().collect(),
            registry: Some((auth.host.clone(), auth.username.clone(), auth.password.clone())),
        };
        let built = buildkit::build(request, &cache_from, provided, gha).await?;
        let how = format!(
            "built with BuildKit in {:.1}s: {} step(s), {} from cache",
            built.seconds, built.steps, built.cached
        );
        gha.info(&format!("{tagged} ({}): {how}", built.image_id));
        return Ok(how);
    }
    if !build.secrets.is_empty() {
        bail!(
            "`secrets` need BuildKit, which this Docker engine (API {api}) does not offer: use an engine with API \
             1.39 or later (Docker 18.09+)"
        );
    }
    let why = if build.builder == Builder::Classic { "`builder: classic`" } else { "no BuildKit in this engine" };
    gha.info(&format!("building with the classic builder ({why})"));
    let started = std::time::Instant::now();
    let id = docker::build(engine, request, gha).await?;
    gha.info(&format!("built {tagged} ({id})"));
    Ok(format!("built with the classic builder in {:.1}s", started.elapsed().as_secs_f64()))
}

/// Pushes the tag, then every further tag and the cache tag (each a manifest: the layers are there).
async fn push_tags(
    engine: &bollard::Docker,
    buildkit: bool,
    target: &Target<'_>,
    build: &BuildSettings,
    auth: &registry::RegistryAuth,
    gha: &Gha,
) -> Result<docker::PushSummary> {
    let name = target.name();
    let summary = docker::push(engine, &name, target.tag, auth, gha).await?;
    for extra in &build.extra_tags {
        docker::tag_and_push(engine, &target.tagged, &name, extra, auth, gha).await?;
        gha.info(&format!("also tagged {name}:{extra}"));
    }
    if let Some(cache) = build.cache_to.as_ref().filter(|_| buildkit) {
        match docker::tag_and_push(engine, &target.tagged, &name, cache, auth, gha).await {
            Ok(()) => gha.info(&format!("build cache: {name}:{cache} (the next build reuses what did not change)")),
            Err(e) => gha.warning(&format!("the build cache could not be kept in {name}:{cache}: {e:#}")),
        }
    }
    Ok(summary)
}

/// An existing image, by digest: a tag is resolved in its registry, so the service never runs a tag
/// that moves. ECR's token goes to ECR hosts and to the explicit `registry` only (it can push to
/// every repository the role can); any other registry is asked anonymously. A tag the registry does
/// not have is an error before anything changes; a registry that cannot be asked leaves the tag as
/// given, with a warning.
async fn pin(uri: &str, explicit: Option<&str>, aws: &Aws, gha: &Gha) -> Result<Image> {
    if let Some((_, digest)) = uri.split_once('@') {
        return Ok(Image { uri: uri.to_string(), digest: Some(digest.to_string()), built: false, build: None });
    }
    let unpinned = |why: String| {
        gha.warning(&format!(
            "`image` {uri} is deployed by tag ({why}): ECS resolves a tag when tasks start, so a moved tag changes what runs; pin it as repo@sha256:…"
        ));
        Ok(Image { uri: uri.to_string(), digest: None, built: false, build: None })
    };
    let Some((host, repository, tag)) = split_reference(uri) else {
        return unpinned("no registry host in it".into());
    };
    let ours = registry::is_ecr_host(host) || explicit == Some(host);
    let auth = if ours {
        match registry::ecr_auth(&aws.ecr, host, gha).await {
            Ok(auth) => Some(auth),
            Err(e) => return unpinned(format!("{e:#}")),
        }
    } else {
        None
    };
    let registry = match registry::Registry::new(host, auth) {
        Ok(registry) => registry,
        Err(e) => return unpinned(format!("{e:#}")),
    };
    match registry.digest(repository, tag).await {
        Ok(Some(digest)) => {
            gha.info(&format!("{uri} is {digest}: deploying it by digest"));
            Ok(Image { uri: format!("{host}/{repository}@{digest}"), digest: Some(digest), built: false, build: None })
        }
        Ok(None) => {
            Err(anyhow!("input `image`: {uri} does not exist in the registry {host}: check the repository and tag"))
        }
        Err(e) => unpinned(format!("{e:#}")),
    }
}

/// `host/repository:tag` → its parts; None without a registry host (Docker Hub shorthand).
fn split_reference(uri: &str) -> Option<(&str, &str, &str)> {
    let (host, rest) = uri.split_once('/')?;
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return None;
    }
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (rest, "latest"),
    };
    Some((host, repository, tag))
}

/// OCI labels for the image: where its source is, which commit, when it was built; and the run,
/// actor and action version that built it.
pub(crate) fn oci_labels(var: impl Fn(&str) -> Option<String>, tag: &str, now: SystemTime) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    if let (Some(server), Some(repo)) = (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
        labels.insert("org.opencontainers.image.source".into(), format!("{server}/{repo}"));
    }
    labels.insert(
        "org.opencontainers.image.revision".into(),
        crate::config::git::built_commit(&var).unwrap_or_else(|| tag.to_string()),
    );
    if let Ok(created) = DateTime::from(now).fmt(DateTimeFormat::DateTime) {
        labels.insert("org.opencontainers.image.created".into(), created);
    }
    // Who built it, as the revision's tags say who deployed it (commit and source are OCI's above).
    for (name, value) in crate::provenance::Provenance::from_env(&var).pairs() {
        if matches!(name, "run" | "actor" | "version") {
            labels.insert(format!("ecs-deploy-action.{name}"), value);
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn references_split_into_host_repository_and_tag() {
        assert_eq!(
            split_reference("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:v1"),
            Some(("123456789012.dkr.ecr.us-east-1.amazonaws.com", "team/web", "v1"))
        );
        assert_eq!(split_reference("127.0.0.1:5000/app"), Some(("127.0.0.1:5000", "app", "latest")));
        assert_eq!(split_reference("localhost/app:1"), Some(("localhost", "app", "1")));
        assert_eq!(split_reference("nginx:1.27"), None);
        assert_eq!(split_reference("library/nginx:1.27"), None);
    }

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
        assert_eq!(labels["ecs-deploy-action.version"], env!("CARGO_PKG_VERSION"));
        let local = oci_labels(|_| None, "v1", SystemTime::UNIX_EPOCH);
        assert_eq!(local["org.opencontainers.image.revision"], "v1");
        assert!(!local.contains_key("org.opencontainers.image.source"));
    }
}
