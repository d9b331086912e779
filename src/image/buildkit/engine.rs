//! The Docker engine's HTTP API where bollard does not reach: a build whose progress comes as
//! BuildKit's own messages, and the session connection the engine upgrades to HTTP/2. One
//! connection per request, to the socket `DOCKER_HOST` names (unix or plain tcp).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

/// From `DOCKER_HOST` (unix:// or tcp://), else the default socket.
pub(crate) fn endpoint() -> Result<Endpoint> {
    parse_host(std::env::var("DOCKER_HOST").ok().as_deref())
}

fn parse_host(host: Option<&str>) -> Result<Endpoint> {
    let host = host.map(str::trim).filter(|h| !h.is_empty()).unwrap_or("unix:///var/run/docker.sock");
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(address) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
        return Ok(Endpoint::Tcp(address.trim_end_matches('/').to_string()));
    }
    bail!("DOCKER_HOST={host} is not a unix:// socket or a plain tcp:// address, which BuildKit builds need")
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn connect(endpoint: &Endpoint) -> Result<Box<dyn Io>> {
    Ok(match endpoint {
        Endpoint::Unix(path) => Box::new(
            tokio::net::UnixStream::connect(path)
                .await
                .with_context(|| format!("cannot connect to the Docker engine at {}", path.display()))?,
        ),
        Endpoint::Tcp(address) => Box::new(
            tokio::net::TcpStream::connect(address)
                .await
                .with_context(|| format!("cannot connect to the Docker engine at {address}"))?,
        ),
    })
}

/// Sends `request` on a connection of its own; the connection is driven in the background (and
/// may be upgraded, for the session).
pub(crate) async fn send(endpoint: &Endpoint, request: http::Request<Full<Bytes>>) -> Result<http::Response<Incoming>> {
    let io = connect(endpoint).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| anyhow!("the Docker engine did not speak HTTP: {e}"))?;
    tokio::spawn(async move {
        // Its end is the request's end (or the session's): nothing to report from here.
        let _ = connection.with_upgrades().await;
    });
    let path = request.uri().path().to_string();
    sender.send_request(request).await.map_err(|e| anyhow!("the Docker engine did not answer {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_forms() {
        assert_eq!(parse_host(None).unwrap(), Endpoint::Unix("/var/run/docker.sock".into()));
        assert_eq!(
            parse_host(Some("unix:///run/user/1000/docker.sock")).unwrap(),
            Endpoint::Unix("/run/user/1000/docker.sock".into())
        );
        assert_eq!(parse_host(Some("tcp://127.0.0.1:2375")).unwrap(), Endpoint::Tcp("127.0.0.1:2375".into()));
        assert!(parse_host(Some("ssh://me@host")).unwrap_err().to_string().contains("unix://"));
    }
}
