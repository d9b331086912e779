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

/// Whether `host` is an Amazon ECR registry endpoint (`<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`):
/// the only hosts ECR's token is for.
pub(crate) fn is_ecr_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let Some((account, rest)) = host.split_once(".dkr.") else { return false };
    let rest = rest.strip_suffix(".amazonaws.com").or_else(|| rest.strip_suffix(".amazonaws.com.cn"));
    let Some(rest) = rest else { return false };
    let Some(region) = rest.strip_prefix("ecr.").or_else(|| rest.strip_prefix("ecr-fips.")) else { return false };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether the ECR repository `name` refuses to move a tag (IMMUTABLE); false when it cannot be told
/// (not an ECR repository, no permission): the push then says what the registry thinks.
pub(crate) async fn tags_are_immutable(ecr: &aws_sdk_ecr::Client, name: &str) -> bool {
    let Ok(out) = ecr.describe_repositories().repository_names(name).send().await else { return false };
    out.repositories().first().and_then(|r| r.image_tag_mutability()).map(|m| m.as_str().starts_with("IMMUTABLE"))
        == Some(true)
}

/// Plain HTTP only for a host that is exactly `localhost` or parses as a loopback address (as
/// Docker allows); `localhost.example.com` and `127.example.com` get https.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A registry's v2 API, over https (plain http for loopback), with ECR's token where it belongs
/// and anonymously everywhere else.
pub(crate) struct Registry {
    host: String,
    auth: Option<RegistryAuth>,
    base: String,
    http: reqwest::Client,
}

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

impl Registry {
    /// `host` with basic auth (ECR's token: ECR and the explicit `registry` only), or anonymous.
    pub(crate) fn new(host: &str, auth: Option<RegistryAuth>) -> Result<Self> {
        let scheme = if is_loopback(host) { "http" } else { "https" };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // A redirect must not carry the credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Registry { host: host.to_string(), base: format!("{scheme}://{host}"), auth, http })
    }

    /// The digest of `repository:tag`, or None when the tag does not exist.
    pub(crate) async fn digest(&self, repository: &str, tag: &str) -> Result<Option<String>> {
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let mut response = self.head(&url, None).await?;
        if response.status().as_u16() == 401 && self.auth.is_none() {
            // The registry token flow, anonymously: a pull token for this repository, if it gives one.
            let challenge =
                response.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let token = self.anonymous_token(challenge, repository).await?;
            response = self.head(&url, Some(&token)).await?;
        }
        match response.status().as_u16() {
            200 => {
                let digest =
                    response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).ok_or_else(|| {
                        anyhow!("the registry {} answered without a Docker-Content-Digest", self.host)
                    })?;
                Ok(Some(digest.to_string()))
            }
            404 => Ok(None),
            401 | 403 if self.auth.is_none() => bail!(
                "the registry {} does not let anonymous clients read `{repository}` (HTTP {}); ECR's token is only sent to ECR and to `registry`",
                self.host,
                response.status().as_u16()
            ),
            401 | 403 => bail!(
                "the registry {} refused the credentials (HTTP {}): for ECR, check that the role may ecr:GetAuthorizationToken and pull from `{repository}`; with `registry` set, that it accepts ECR's token",
                self.host,
                response.status().as_u16()
            ),
            status => bail!("the registry {} answered HTTP {status} for {repository}:{tag}", self.host),
        }
    }

    /// The `org.opencontainers.image.revision` label of `repository:tag` (an image manifest's
    /// config), or None when it has none or the tag is an index. Only for the deploy's own registry.
    pub(crate) async fn revision(&self, repository: &str, tag: &str) -> Result<Option<String>> {
        let manifest: serde_json::Value = self
            .get(&format!("{}/v2/{repository}/manifests/{tag}", self.base), Some(MANIFEST_TYPES))
            .await?
            .json()
            .await
            .with_context(|| format!("the registry {} answered {repository}:{tag} with no manifest", self.host))?;
        let Some(config) = manifest.pointer("/config/digest").and_then(|d| d.as_str()) else { return Ok(None) };
        let config: serde_json::Value =
            self.get(&format!("{}/v2/{repository}/blobs/{config}", self.base), None).await?.json().await.with_context(
                || format!("the registry {} answered {repository}:{tag}'s config with no JSON", self.host),
            )?;
        let label = config.pointer("/config/Labels/org.opencontainers.image.revision");
        Ok(label.and_then(|v| v.as_str()).map(str::to_string))
    }

    /// GET with the registry's credentials; a redirect (ECR's blobs are served from S3) is followed
    /// once, without them.
    async fn get(&self, url: &str, accept: Option<&str>) -> Result<reqwest::Response> {
        let mut request = self.http.get(url);
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        if let Some(auth) = &self.auth {
            request = request.basic_auth(&auth.username, Some(auth.password.expose()));
        }
        let reach = || format!("could not reach the registry {}: check `registry` and the network", self.host);
        let response = request.send().await.with_context(reach)?;
        let response = match response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()) {
            Some(location) if response.status().is_redirection() => {
                let location = reqwest::Url::parse(url).and_then(|base| base.join(location))?;
                self.http.get(location).send().await.with_context(reach)?
            }
            _ => response,
        };
        response.error_for_status().with_context(|| format!("the registry {} refused {url}", self.host))
    }

    async fn head(&self, url: &str, bearer: Option<&str>) -> Result<reqwest::Response> {
        let mut request = self.http.head(url).header(reqwest::header::ACCEPT, MANIFEST_TYPES);
        if let Some(auth) = &self.auth {
            request = request.basic_auth(&auth.username, Some(auth.password.expose()));
        } else if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.with_context(|| {
            format!("could not reach the registry {}: check `image`, `registry` and the network", self.host)
        })
    }

    /// `Bearer realm="…",service="…",scope="…"` → GET realm?service&scope without credentials → token.
    async fn anonymous_token(&self, challenge: &str, repository: &str) -> Result<String> {
        let params = bearer_challenge(challenge)
            .ok_or_else(|| anyhow!("the registry {} asks for credentials it does not get here", self.host))?;
        let realm = params.iter().find(|(k, _)| k == "realm").map(|(_, v)| v.as_str()).unwrap_or_default();
        let mut url = reqwest::Url::parse(realm)
            .with_context(|| format!("the registry {} names a token service that is not a URL", self.host))?;
        if url.scheme() != "https" && !url.host_str().is_some_and(is_loopback) {
            bail!("the registry {} names a token service over plain http: not used", self.host);
        }
        let scope = format!("repository:{repository}:pull");
        {
            let mut query = url.query_pairs_mut();
            if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &scope);
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: Token = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("the token service of {} gave no anonymous token", self.host))?
            .json()
            .await
            .with_context(|| format!("the token service of {} answered without a token", self.host))?;
        answer
            .token
            .or(answer.access_token)
            .ok_or_else(|| anyhow!("the token service of {} answered without a token", self.host))
    }
}

/// The parameters of a `WWW-Authenticate: Bearer k="v",…` challenge; None for another scheme.
fn bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim().strip_prefix("Bearer ")?;
    let mut params = Vec::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        params.push((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()));
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ecr_endpoints_are_ecr() {
        assert!(is_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com"));
        assert!(is_ecr_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"));
        assert!(is_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"));
        for host in [
            "ghcr.io",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            "evil.example/123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "12345.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.org",
            "127.0.0.1:5000",
        ] {
            assert!(!is_ecr_host(host), "{host}");
        }
    }

    #[test]
    fn plain_http_only_for_a_parsed_loopback_address_or_localhost() {
        for host in ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "127.1.2.3:80", "[::1]:5000"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["localhost.example.com", "127.example.com", "127.0.0.1.nip.io:5000", "10.0.0.1:5000", "ghcr.io"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_bearer_challenge_gives_realm_service_and_scope() {
        let params =
            bearer_challenge(r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/a:pull""#)
                .unwrap();
        assert_eq!(params[0], ("realm".into(), "https://ghcr.io/token".into()));
        assert_eq!(params[1], ("service".into(), "ghcr.io".into()));
        assert_eq!(bearer_challenge(r#"Basic realm="registry""#), None);
    }
}
