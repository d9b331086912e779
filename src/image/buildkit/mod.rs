//! Builds with BuildKit through the Docker engine's API (`POST /build?version=2` with a session, as
//! the docker CLI does; no CLI in the action's image): cache, secret and bind mounts, `COPY
//! --chmod`, the automatic platform arguments. And what needs it: a Dockerfile that uses
//! BuildKit-only syntax is refused before anything runs when the engine can only build classically.

pub(crate) mod engine;
mod progress;
pub(crate) mod session;
mod wire;

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::docker::BuildRequest;
use crate::config::{BuildSettings, Builder};
use crate::failure::Refused;
use crate::gha::Gha;

/// The engine API version from which BuildKit builds through the API are offered (Docker 18.09).
const BUILDKIT_API: (u32, u32) = (1, 39);

/// Whether an engine of API `version` (`1.41`) builds with BuildKit.
pub(crate) fn offers_buildkit(version: &str) -> bool {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= BUILDKIT_API
}

/// The first line of `dockerfile` that the classic builder cannot build: `(line number, what)`.
pub(crate) fn needs_buildkit(dockerfile: &str) -> Option<(usize, String)> {
    const AUTOMATIC: [&str; 8] = [
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
    ];
    for (i, raw) in dockerfile.lines().enumerate() {
        let line = raw.trim();
        let lower = line.to_ascii_lowercase();
        let words: Vec<&str> = line.split_whitespace().collect();
        let instruction = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
        let found = if lower.starts_with("# syntax=") || lower.starts_with("#syntax=") {
            Some("a `# syntax=` frontend directive".to_string())
        } else if instruction == "RUN" && words.iter().any(|w| w.starts_with("--mount=")) {
            let mount = words.iter().find(|w| w.starts_with("--mount=")).copied().unwrap_or_default();
            Some(format!("`RUN {mount}`"))
        } else if matches!(instruction.as_str(), "COPY" | "ADD")
            && let Some(flag) = words.iter().find(|w| w.starts_with("--chmod") || w.starts_with("--link"))
        {
            Some(format!("`{instruction} {flag}`"))
        } else if matches!(instruction.as_str(), "RUN" | "COPY") && line.contains("<<") {
            Some(format!("a heredoc in `{instruction}`"))
        } else if instruction == "ARG"
            && let Some(name) = words.get(1).map(|w| w.split('=').next().unwrap_or(w))
            && AUTOMATIC.contains(&name)
            && !words[1].contains('=')
        {
            Some(format!("`ARG {name}` (set automatically by BuildKit only)"))
        } else {
            None
        };
        if let Some(what) = found {
            return Some((i + 1, what));
        }
    }
    None
}

/// A Dockerfile that only BuildKit builds is refused before anything runs when the build would be
/// classic (`builder: classic`, or an engine without BuildKit), naming the file, line and syntax.
/// An engine that does not answer here is left to the build to report (the tag may exist already).
/// Part of planning: called before the first change.
pub(crate) async fn check_builder(b: &BuildSettings) -> Result<()> {
    let path = b.context.join(&b.dockerfile);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
    let Some((line, what)) = needs_buildkit(&text) else { return Ok(()) };
    let why = match b.builder {
        Builder::Classic => "`builder` is `classic`: set `builder: auto`".to_string(),
        Builder::Auto => {
            let Ok(engine) = super::docker::connect().await else { return Ok(()) };
            let api = engine.version().await.ok().and_then(|v| v.api_version).unwrap_or_default();
            if offers_buildkit(&api) {
                return Ok(());
            }
            format!("this Docker engine (API {api}) builds only classically: use Docker 18.09 or later")
        }
    };
    Err(Refused(format!("{}:{line}: {what} needs BuildKit, and {why}", b.dockerfile)).into())
}

/// How a build went, for the log and the summary.
pub(crate) struct Built {
    pub(crate) image_id: String,
    pub(crate) steps: usize,
    pub(crate) cached: usize,
    pub(crate) seconds: f64,
}

fn query(pairs: &[(&str, String)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

/// Builds and tags the image with BuildKit, printing a line per step as it completes; the build's
/// own output stays inert (it is the Dockerfile's text and its tools').
/// `cache_from`: images whose inline cache the build may reuse; `provided`: what the session gives
/// the engine (secrets, registry credentials).
pub(crate) async fn build(
    request: BuildRequest<'_>,
    cache_from: &[String],
    provided: session::Provided,
    gha: &Gha,
) -> Result<Built> {
    let started = Instant::now();
    let endpoint = engine::endpoint()?;
    let session = session::start(&endpoint, provided).await?;
    let mut args: HashMap<&str, &str> = request.build_args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The image carries its own cache metadata (inline cache), so pushing it keeps the cache in the
    // registry: what the engine's built-in BuildKit can export.
    args.insert("BUILDKIT_INLINE_CACHE", "1");
    let mut pairs = vec![
        ("version", "2".to_string()),
        ("session", session.id.clone()),
        ("t", request.tag.to_string()),
        ("dockerfile", request.dockerfile.to_string()),
        ("buildargs", serde_json::to_string(&args)?),
        ("labels", serde_json::to_string(&request.labels)?),
        ("cachefrom", serde_json::to_string(cache_from)?),
        ("rm", "1".to_string()),
        ("forcerm", "1".to_string()),
    ];
    if let Some(target) = request.target {
        pairs.push(("target", target.to_string()));
    }
    if request.no_cache {
        pairs.push(("nocache", "1".to_string()));
    }
    if request.pull {
        pairs.push(("pull", "1".to_string()));
    }
    if let Some(platform) = request.platform {
        pairs.push(("platform", platform.to_string()));
    }
    let post = http::Request::post(format!("/build?{}", query(&pairs)))
        .header("Host", "docker")
        .header("Content-Type", "application/x-tar")
        .body(Full::new(Bytes::from(request.context_tar)))?;
    let mut response = engine::send(&endpoint, post).await?;
    let status = response.status();
    let _inert = gha.stop_commands();
    let mut steps = progress::Steps::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut image_id = None;
    let mut error = None;
    while let Some(frame) = response.body_mut().frame().await {
        let frame = frame.map_err(|e| anyhow!("the Docker engine broke off the build: {e}"))?;
        let Some(data) = frame.data_ref() else { continue };
        pending.extend_from_slice(data);
        let mut messages = serde_json::Deserializer::from_slice(&pending).into_iter::<serde_json::Value>();
        let mut used = 0;
        // A message cut off at the frame's end is read whole with the next frame.
        while let Some(Ok(message)) = messages.next() {
            used = messages.byte_offset();
            if let Some(e) = message.pointer("/errorDetail/message").or_else(|| message.get("error")) {
                error.get_or_insert_with(|| e.as_str().unwrap_or_default().to_string());
            }
            match (message.get("id").and_then(|v| v.as_str()), message.get("aux")) {
                (Some("moby.buildkit.trace"), Some(aux)) => {
                    let raw = base64::engine::general_purpose::STANDARD.decode(aux.as_str().unwrap_or_default())?;
                    for line in steps.apply(&raw)? {
                        gha.info(&line);
                    }
                }
                (Some("moby.image.id"), Some(aux)) => {
                    image_id = aux.get("ID").and_then(|v| v.as_str()).map(str::to_string);
                }
                _ => {
                    if let Some(text) = message.get("stream").and_then(|v| v.as_str()) {
                        text.lines().filter(|l| !l.trim().is_empty()).for_each(|l| gha.info(l));
                    }
                }
            }
        }
        pending.drain(..used);
    }
    drop(session);
    if !status.is_success() {
        let body = String::from_utf8_lossy(&pending).trim().to_string();
        bail!("the Docker engine refused the BuildKit build (HTTP {}): {body}", status.as_u16());
    }
    if let Some(error) = error {
        return Err(match steps.failure() {
            Some(step) => anyhow!("the image build failed at {step}"),
            None => anyhow!("the image build failed: {}", error.trim()),
        });
    }
    let image_id = image_id.ok_or_else(|| anyhow!("the build finished without an image id"))?;
    let (count, cached) = steps.counts();
    Ok(Built { image_id, steps: count, cached, seconds: started.elapsed().as_secs_f64() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_from_api_1_39() {
        assert!(offers_buildkit("1.41"));
        assert!(offers_buildkit("1.39"));
        assert!(!offers_buildkit("1.38"));
        assert!(offers_buildkit("2.0"));
        assert!(!offers_buildkit("nonsense"));
    }

    #[test]
    fn what_the_classic_builder_cannot_build_is_found_with_its_line() {
        let file = "FROM scratch\nARG TARGETARCH\nRUN --mount=type=cache,target=/root/.cache make\n";
        assert_eq!(needs_buildkit(file), Some((2, "`ARG TARGETARCH` (set automatically by BuildKit only)".into())));
        assert_eq!(
            needs_buildkit("FROM a\nRUN --mount=type=secret,id=npm npm ci"),
            Some((2, "`RUN --mount=type=secret,id=npm`".into()))
        );
        assert_eq!(needs_buildkit("FROM a\nCOPY --chmod=755 run.sh /"), Some((2, "`COPY --chmod=755`".into())));
        assert_eq!(
            needs_buildkit("# syntax=docker/dockerfile:1\nFROM a"),
            Some((1, "a `# syntax=` frontend directive".into()))
        );
        assert_eq!(needs_buildkit("FROM a\nRUN <<EOF\necho hi\nEOF"), Some((2, "a heredoc in `RUN`".into())));
        // What the classic builder builds.
        let classic = "FROM a AS build\nARG TARGETARCH=amd64\nARG VERSION\nCOPY --chown=1:1 . /src\nRUN make\n";
        assert_eq!(needs_buildkit(classic), None);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query(&[("t", "127.0.0.1:5000/app:v1".into()), ("buildargs", "{\"A\":\"b c\"}".into())]),
            "t=127.0.0.1%3A5000%2Fapp%3Av1&buildargs=%7B%22A%22%3A%22b%20c%22%7D"
        );
    }
}
