//! The build's session: the engine calls back into the action over it for the secrets a `RUN
//! --mount=type=secret` asks for and the registry credentials a base image needs, and checks that
//! it is alive. A small gRPC server on the connection the engine upgrades to HTTP/2 (`POST
//! /session`, as the docker CLI does); secrets travel only over that local connection.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::engine::{self, Endpoint};
use super::wire;
use crate::secret::Secret;

const HEALTH: &str = "/grpc.health.v1.Health/Check";
const SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";
const CREDENTIALS: &str = "/moby.filesync.v1.Auth/Credentials";

/// gRPC status codes the session answers with.
const NOT_FOUND: u32 = 5;
const UNIMPLEMENTED: u32 = 12;

/// What the session gives the engine: build secrets by id, and the credentials of one registry.
#[derive(Default)]
pub(crate) struct Provided {
    pub(crate) secrets: HashMap<String, Secret>,
    /// (host, user, password) of the registry the image goes to (ECR), for base images there.
    pub(crate) registry: Option<(String, String, Secret)>,
}

/// A running session; dropping it ends it.
pub(crate) struct Session {
    pub(crate) id: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Opens a session with the engine and serves it in the background.
pub(crate) async fn start(endpoint: &Endpoint, provided: Provided) -> Result<Session> {
    let id: String = std::iter::repeat_with(fastrand::alphanumeric).take(25).collect();
    let mut request = http::Request::post("/session")
        .header("Host", "docker")
        .header("Connection", "Upgrade")
        .header("Upgrade", "h2c")
        .header("X-Docker-Expose-Session-Uuid", &id)
        .header("X-Docker-Expose-Session-Name", "ecs-deploy-action")
        .header("X-Docker-Expose-Session-Sharedkey", "");
    for method in [HEALTH, SECRET, CREDENTIALS] {
        request = request.header("X-Docker-Expose-Session-Grpc-Method", method);
    }
    let request = request.body(Full::new(Bytes::new()))?;
    let response = engine::send(endpoint, request).await?;
    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        bail!(
            "the Docker engine refused a BuildKit session (HTTP {}): it needs API 1.39 or later with BuildKit; \
             set `builder: classic` to build without it",
            response.status().as_u16()
        );
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| anyhow!("the Docker engine dropped the BuildKit session: {e}"))?;
    let provided = Arc::new(provided);
    let server = tokio::spawn(serve(TokioIo::new(upgraded), provided));
    Ok(Session { id, server })
}

async fn serve<T>(io: T, provided: Arc<Provided>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Ok(mut connection) = h2::server::handshake(io).await else { return };
    while let Some(Ok((request, respond))) = connection.accept().await {
        let provided = Arc::clone(&provided);
        tokio::spawn(async move {
            // A call that cannot be answered is the engine's to report (the build says which).
            let _ = answer(request, respond, &provided).await;
        });
    }
}

/// One unary call: read its message, answer it or say why not.
async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    provided: &Provided,
) -> Result<()> {
    let method = request.uri().path().to_string();
    let mut body = request.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let reply = match wire::unframe(&data) {
        Ok(message) => reply(&method, message, provided),
        Err(e) => Err((UNIMPLEMENTED, format!("{e:#}"))),
    };
    match reply {
        Ok(message) => {
            let head = http::Response::builder().status(200).header("content-type", "application/grpc").body(())?;
            let mut stream = respond.send_response(head, false)?;
            stream.send_data(Bytes::from(wire::frame(&message)), false)?;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            stream.send_trailers(trailers)?;
        }
        Err((code, why)) => {
            let head = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .header("grpc-status", code.to_string())
                .header("grpc-message", why.replace(|c: char| !c.is_ascii_graphic() && c != ' ', "_"))
                .body(())?;
            respond.send_response(head, true)?;
        }
    }
    Ok(())
}

/// The answer to one call, or its gRPC status and message.
fn reply(method: &str, message: &[u8], provided: &Provided) -> Result<Vec<u8>, (u32, String)> {
    let fields = wire::fields(message).map_err(|e| (UNIMPLEMENTED, format!("{e:#}")))?;
    let mut out = Vec::new();
    match method {
        HEALTH => wire::put_number(&mut out, 1, 1),
        SECRET => {
            let id = wire::text(&fields, 1);
            let secret = provided.secrets.get(&id).ok_or_else(|| {
                (NOT_FOUND, format!("secret {id} not found: give it in the `secrets` input as {id}=..."))
            })?;
            wire::put_bytes(&mut out, 1, secret.expose().as_bytes());
        }
        CREDENTIALS => {
            // Other registries: anonymous, as the engine would pull them.
            let host = wire::text(&fields, 1);
            if let Some((_, user, password)) = provided.registry.as_ref().filter(|(h, ..)| *h == host) {
                wire::put_bytes(&mut out, 1, user.as_bytes());
                wire::put_bytes(&mut out, 2, password.expose().as_bytes());
            }
        }
        other => return Err((UNIMPLEMENTED, format!("{other} is not offered by this session"))),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provided() -> Provided {
        Provided {
            secrets: HashMap::from([("npm_token".to_string(), Secret::new("s3cr3t-value"))]),
            registry: Some(("123.dkr.ecr.us-east-1.amazonaws.com".into(), "AWS".into(), Secret::new("ecr-token"))),
        }
    }

    fn ask(method: &str, field: &str) -> Result<Vec<u8>, (u32, String)> {
        let mut request = Vec::new();
        wire::put_bytes(&mut request, 1, field.as_bytes());
        reply(method, &request, &provided())
    }

    #[test]
    fn a_secret_is_given_by_id_and_a_missing_one_is_not_found_with_the_fix() {
        let found = ask(SECRET, "npm_token").unwrap();
        assert_eq!(wire::text(&wire::fields(&found).unwrap(), 1), "s3cr3t-value");
        let (code, why) = ask(SECRET, "gh_token").unwrap_err();
        assert_eq!(code, NOT_FOUND);
        assert!(why.contains("`secrets` input as gh_token=..."), "{why}");
    }

    #[test]
    fn only_the_deploys_registry_gets_its_credentials() {
        let ecr = wire::fields(&ask(CREDENTIALS, "123.dkr.ecr.us-east-1.amazonaws.com").unwrap()).unwrap().len();
        assert_eq!(ecr, 2);
        assert!(ask(CREDENTIALS, "registry-1.docker.io").unwrap().is_empty(), "anonymous elsewhere");
    }

    #[test]
    fn health_is_serving_and_anything_else_unimplemented() {
        assert_eq!(ask(HEALTH, "").unwrap(), [0x08, 0x01]);
        assert_eq!(ask("/moby.filesync.v1.FileSync/DiffCopy", "").unwrap_err().0, UNIMPLEMENTED);
    }
}
