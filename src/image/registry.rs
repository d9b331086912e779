//! The registry side of the image: ECR's token as basic auth, and the Docker Registry v2 API question
//! "does this tag exist, and with which digest?" (ECR answers it too).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;

use crate::aws::call_failed;
use crate::gha::Gha;
use crate::secret::Secret;

/// Basic-auth credentials for one registry host.
#[derive(Clone, Debug)]
pub(crate) struct RegistryAuth {
    pub(crate) host: String,
    pub(crate) username: String,
    pub(crate) password: Secret,
}

/// ECR GetAuthorizationToken → `user:password` for `host`. The token and the password are masked.
pub(crate) async fn ecr_auth(ecr: &aws_sdk_ecr::Client, host: &str, gha: &Gha) -> Result<RegistryAuth> {
    let out = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| call_failed("ECR GetAuthorizationToken", &e))
        .context("could not get a registry token from ECR (ecr:GetAuthorizationToken): does the role allow it?")?;
    let token = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
        .ok_or_else(|| anyhow!("ECR answered GetAuthorizationToken without a token"))?;
    gha.mask(token);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| anyhow!("ECR's authorization token is not base64 `user:password`"))?;
    let (username, password) =
        decoded.split_once(':').ok_or_else(|| anyhow!("ECR's authorization token is not `user:password`"))?;
    gha.mask(password);
    Ok(RegistryAuth { host: host.to_string(), username: username.to_string(), password: Secret::new(password) })
}

/// A registry's v2 API, over https, or plain http for loopback hosts (as Docker itself allows).
pub(crate) struct Registry {
    auth: RegistryAuth,
    base: String,
    http: reqwest::Client,
}

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

impl Registry {
    pub(crate) fn new(auth: RegistryAuth) -> Result<Self> {
        let loopback = ["localhost", "127.", "[::1]"].iter().any(|p| auth.host.starts_with(p));
        let scheme = if loopback { "http" } else { "https" };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Registry { base: format!("{scheme}://{}", auth.host), auth, http })
    }

    /// The digest of `repository:tag`, or None when the tag does not exist.
    pub(crate) async fn digest(&self, repository: &str, tag: &str) -> Result<Option<String>> {
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let response = self
            .http
            .head(&url)
            .basic_auth(&self.auth.username, Some(self.auth.password.expose()))
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES)
            .send()
            .await
            .with_context(|| {
                format!("could not reach the registry {}: check `registry` and the network", self.auth.host)
            })?;
        match response.status().as_u16() {
            200 => {
                let digest =
                    response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).ok_or_else(|| {
                        anyhow!("the registry {} answered without a Docker-Content-Digest", self.auth.host)
                    })?;
                Ok(Some(digest.to_string()))
            }
            404 => Ok(None),
            401 | 403 => bail!(
                "the registry {} refused the credentials (HTTP {}): for ECR, check that the role may ecr:GetAuthorizationToken and pull from `{repository}`; with `registry` set, that it accepts ECR's token",
                self.auth.host,
                response.status().as_u16()
            ),
            status => bail!("the registry {} answered HTTP {status} for {repository}:{tag}", self.auth.host),
        }
    }
}
