//! The Docker engine side of the image: build from the context tar with the output streamed into the
//! log, then push with the registry's credentials, reporting layers (not bytes).

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use futures_util::StreamExt;

use super::registry::RegistryAuth;
use crate::gha::Gha;

/// The engine the runner (or `DOCKER_HOST`) offers, checked to answer.
pub(crate) async fn connect() -> Result<Docker> {
    let hint = "is the Docker engine running? (set DOCKER_HOST if it is not at unix:///var/run/docker.sock; a container action gets the runner's socket mounted)";
    let docker = Docker::connect_with_local_defaults().with_context(|| format!("cannot connect to Docker: {hint}"))?;
    docker.ping().await.map_err(|e| anyhow!("the Docker engine does not answer ({e}): {hint}"))?;
    Ok(docker)
}

/// One build, whichever builder makes it.
pub(crate) struct BuildRequest<'a> {
    pub(crate) context_tar: Vec<u8>,
    pub(crate) dockerfile: &'a str,
    pub(crate) tag: &'a str,
    pub(crate) target: Option<&'a str>,
    pub(crate) platform: Option<&'a str>,
    pub(crate) build_args: &'a [(String, String)],
    pub(crate) labels: HashMap<String, String>,
    pub(crate) no_cache: bool,
    pub(crate) pull: bool,
}

/// Builds and tags the image; returns its id. A failure ends with the builder's own error and the
/// instruction that failed.
pub(crate) async fn build(docker: &Docker, request: BuildRequest<'_>, gha: &Gha) -> Result<String> {
    let build_args: HashMap<String, String> = request.build_args.iter().cloned().collect();
    let mut options = BuildImageOptionsBuilder::new()
        .dockerfile(request.dockerfile)
        .t(request.tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&build_args)
        .labels(&request.labels)
        .nocache(request.no_cache)
        .pull(if request.pull { "1" } else { "" });
    if let Some(target) = request.target {
        options = options.target(target);
    }
    if let Some(platform) = request.platform {
        options = options.platform(platform);
    }
    let body = bollard::body_full(bytes::Bytes::from(request.context_tar));
    let mut stream = docker.build_image(options.build(), None, Some(body));
    let mut last_step: Option<String> = None;
    let mut image_id: Option<String> = None;
    // Build output is the Dockerfile's and its tools' text: shown, never run as workflow commands.
    let _inert = gha.stop_commands();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(build_failed(&error, last_step.as_deref()));
            }
            Err(e) => return Err(anyhow!("the build failed: {e}")),
        };
        if let Some(detail) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
            return Err(build_failed(&detail, last_step.as_deref()));
        }
        if let Some(text) = info.stream.as_deref() {
            for line in text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
                if line.starts_with("Step ") {
                    last_step = Some(line.to_string());
                }
                gha.info(line);
            }
        }
        if let Some(aux) = &info.aux {
            image_id = aux.id.clone();
        }
    }
    image_id.ok_or_else(|| anyhow!("the build finished without an image id"))
}

fn build_failed(message: &str, step: Option<&str>) -> anyhow::Error {
    match step {
        Some(step) => anyhow!("the image build failed at {step}\n{}", message.trim()),
        None => anyhow!("the image build failed: {}", message.trim()),
    }
}

/// Pushes `name:tag` (name includes the registry host). Logs one line per layer outcome.
pub(crate) async fn push(
    docker: &Docker,
    name: &str,
    tag: &str,
    auth: &RegistryAuth,
    gha: &Gha,
) -> Result<PushSummary> {
    let credentials = DockerCredentials {
        username: Some(auth.username.clone()),
        password: Some(auth.password.expose().to_string()),
        serveraddress: Some(auth.host.clone()),
        ..Default::default()
    };
    let options = PushImageOptionsBuilder::new().tag(tag).build();
    let mut stream = docker.push_image(name, Some(options), Some(credentials));
    let mut summary = PushSummary::default();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => return Err(push_failed(&error, auth)),
            Err(e) => return Err(push_failed(&e.to_string(), auth)),
        };
        if let Some(message) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
            return Err(push_failed(&message, auth));
        }
        match info.status.as_deref() {
            Some("Pushed") => {
                summary.pushed += 1;
                gha.info(&format!("layer pushed ({} so far)", summary.pushed));
            }
            Some("Layer already exists") => summary.existing += 1,
            Some(s) if s.starts_with("Mounted from") => summary.existing += 1,
            _ => {}
        }
    }
    Ok(summary)
}

/// Tags `image` as `name:tag` and pushes that tag.
pub(crate) async fn tag_and_push(
    docker: &Docker,
    image: &str,
    name: &str,
    tag: &str,
    auth: &RegistryAuth,
    gha: &Gha,
) -> Result<()> {
    let options = bollard::query_parameters::TagImageOptionsBuilder::new().repo(name).tag(tag).build();
    docker.tag_image(image, Some(options)).await.map_err(|e| anyhow!("could not tag {image} as {name}:{tag}: {e}"))?;
    push(docker, name, tag, auth, gha).await.map(|_| ())
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PushSummary {
    pub(crate) pushed: u32,
    pub(crate) existing: u32,
}

fn push_failed(message: &str, auth: &RegistryAuth) -> anyhow::Error {
    let lower = message.to_ascii_lowercase();
    if lower.contains("unauthorized") || lower.contains("authentication required") || lower.contains("denied") {
        return anyhow!(
            "the registry {} refused the push: {}\nhint: the credentials from ECR's token were not accepted; check that the role may push (ecr:InitiateLayerUpload, ecr:PutImage, ...) and, with `registry` set, that the registry accepts ECR's token",
            auth.host,
            message.trim()
        );
    }
    if lower.contains("name unknown") || lower.contains("does not exist") {
        return anyhow!(
            "the registry {} has no such repository: {}\nhint: create the ECR repository first",
            auth.host,
            message.trim()
        );
    }
    anyhow!("the push to {} failed: {}", auth.host, message.trim())
}
