//! The parsers of single input values: each takes the text a workflow gave and returns the typed
//! value or a message that names the problem and shows a value that would work. The rules that tie
//! inputs together live in validate.rs.

use std::time::Duration;

use super::duration;

pub(crate) fn region(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok();
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not an AWS region: write it like `us-east-1` or `eu-central-1`"))
    }
}

pub(crate) struct ArnParts {
    pub(crate) region: String,
}

/// Checks `arn:<partition>:<service>:<region>:<account>:<resource>` with a resource starting with
/// `resource_prefix`.
pub(crate) fn arn(v: &str, service: &str, resource_prefix: &str) -> Result<ArnParts, String> {
    let example = match service {
        "iam" => "arn:aws:iam::123456789012:role/deploy",
        _ if resource_prefix == "listener-rule/" => {
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
        }
        _ => "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
    };
    let bad = |why: &str| Err(format!("`{v}` is not a valid ARN ({why}): it looks like `{example}`"));
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return bad("it should have six `:`-separated parts starting with `arn`");
    }
    if !parts[1].starts_with("aws") {
        return bad("unknown partition");
    }
    if parts[2] != service {
        return bad(&format!("it is a `{}` ARN, not `{service}`", parts[2]));
    }
    let account = parts[4];
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return bad("the account id should be 12 digits");
    }
    if service != "iam" && region(parts[3]).is_err() {
        return bad("no region");
    }
    if !parts[5].starts_with(resource_prefix) || parts[5].len() <= resource_prefix.len() {
        return bad(&format!("the resource should start with `{resource_prefix}`"));
    }
    Ok(ArnParts { region: parts[3].to_string() })
}

pub(crate) fn session_name(v: &str) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if (2..=64).contains(&v.len()) && v.chars().all(ok_char) {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` must be 2 to 64 characters of letters, digits and +=,.@_-"))
    }
}

pub(crate) fn http_url(v: &str) -> Result<reqwest::Url, String> {
    match reqwest::Url::parse(v) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some() => Ok(u),
        _ => Err(format!("`{v}` is not an http(s) URL: write it like `https://example.com/health`")),
    }
}

pub(crate) fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{v}` is not a boolean: use `true` or `false`")),
    }
}

/// At least one second: gates checked more often ask AWS for data it has not published yet, and
/// spend its rate limits.
pub(crate) fn check_interval(v: &str) -> Result<Duration, String> {
    match duration::parse(v)? {
        d if d < Duration::from_secs(1) => {
            Err(format!("`{v}` is shorter than 1s: check gates at most once a second, e.g. 10s"))
        }
        d => Ok(d),
    }
}

pub(crate) fn positive_duration(v: &str) -> Result<Duration, String> {
    match duration::parse(v)? {
        d if d.is_zero() => Err(format!("`{v}` must be longer than zero, e.g. 10s")),
        d => Ok(d),
    }
}

/// A whole number of requests, at most a million (a step needs that many before its rate counts).
pub(crate) fn request_count(v: &str) -> Result<u64, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if n <= 1_000_000 => Ok(n),
        Ok(_) => Err(format!("`{v}` requests is more than a step can be expected to see: use at most 1000000")),
        Err(_) => Err(format!("`{v}` is not a whole number of requests: write it like `50`")),
    }
}

/// `failure-limit`: consecutive failing checks before a gate fails its step, 1 to 10.
pub(crate) fn failure_limit(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=10).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{v}` is not a number of checks from 1 to 10: write it like `2` (1 fails a step at its first failing check)"
        )),
    }
}

/// `gate-confidence`: the confidence of the error-rate test and of "enough requests", 80% to 99.9%,
/// as a fraction.
pub(crate) fn confidence(v: &str) -> Result<f64, String> {
    let n = v.trim().strip_suffix('%').and_then(|n| n.trim().parse::<f64>().ok());
    match n {
        Some(n) if (80.0..=99.9).contains(&n) => Ok(n / 100.0),
        _ => Err(format!("`{v}` is not a confidence from 80% to 99.9%: write it like `99%` or `95%`")),
    }
}

pub(crate) fn key_values(v: &str, what: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (n, line) in v.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The text of a bad line is never shown: it may be a piece of a secret (a PEM's second line).
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {} is not KEY=VALUE (its text is not shown: it may be part of a secret). Write one {what} a \
                 line, e.g. `LOG_LEVEL=info`; a value cannot span lines: a multi-line value (a PEM key, a \
                 certificate) belongs in the task definition's `secrets` (Secrets Manager or SSM Parameter Store)",
                n + 1
            ));
        };
        let key = key.trim();
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(format!(
                "line {}: the name before `=` is not a valid {what} name (not shown: it may be part of a secret): \
                 use letters, digits and _, not starting with a digit",
                n + 1
            ));
        }
        if value.contains("-----BEGIN") {
            // The lines after it are the rest of the block: refused here, before any is read as a name.
            return Err(format!(
                "line {}: the value of `{key}` starts a PEM block (not shown), and a value cannot span lines: a \
                 key or certificate belongs in the task definition's `secrets` (Secrets Manager or SSM Parameter \
                 Store)",
                n + 1
            ));
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(format!("line {}: `{key}` is set twice: keep one", n + 1));
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// What a build-arg value looks like when it is a credential, for the refusal: the classic builder
/// records every build-arg value in the image's history, readable by anyone who can pull it.
pub(crate) fn looks_like_a_secret(value: &str) -> Option<&'static str> {
    let v = value.trim();
    let prefixed = |prefixes: &[&str]| prefixes.iter().any(|p| v.starts_with(p));
    if prefixed(&["ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_"]) {
        return Some("a GitHub token");
    }
    if prefixed(&["AKIA", "ASIA"]) && v.len() == 20 && v.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        return Some("an AWS access key id");
    }
    if v.contains("-----BEGIN") {
        return Some("a PEM key or certificate");
    }
    if prefixed(&["xoxb-", "xoxp-", "npm_", "glpat-", "sk_live_"]) {
        return Some("an API token");
    }
    let jwt = v.split('.').collect::<Vec<_>>();
    if jwt.len() == 3 && v.starts_with("eyJ") && jwt.iter().all(|p| p.len() >= 10) {
        return Some("a JWT");
    }
    None
}

pub(crate) fn alarm_names(v: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> =
        v.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    if let Some(long) = names.iter().find(|n| n.len() > 255) {
        return Err(format!("`{long}` is longer than 255 characters, the limit for a CloudWatch alarm name"));
    }
    Ok(names)
}

pub(crate) fn image_reference(v: &str) -> Result<String, String> {
    if v.contains("://") || v.chars().any(char::is_whitespace) || v.starts_with('/') || v.ends_with([':', '@', '/']) {
        return Err(format!(
            "`{v}` is not an image reference: write it like `123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:<digest>` (no scheme)"
        ));
    }
    if let Some((_, digest)) = v.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!(
                "`{v}`: the digest must be `sha256:` and 64 lowercase hex digits (as `docker buildx imagetools inspect` prints it)"
            ));
        }
    }
    Ok(v.to_string())
}

pub(crate) fn ecr_repository_name(v: &str) -> Result<String, String> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if v.contains(".amazonaws.com") || v.contains(':') || v.split('/').next().is_some_and(|f| f.contains('.')) {
        return Err(format!(
            "`{v}` looks like an image address: give only the repository name (e.g. `my-app`); set `registry` to change the host"
        ));
    }
    if (2..=256).contains(&v.len()) && v.split('/').all(component_ok) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "`{v}` is not an ECR repository name: lowercase letters, digits, and . _ - / between them, e.g. `team/my-app`"
        ))
    }
}

pub(crate) fn registry_host(v: &str) -> Result<String, String> {
    if v.contains("://") || v.contains('/') || v.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{v}` is not a registry host: write host or host:port without scheme or path, e.g. `127.0.0.1:5000`"
        ));
    }
    if let Some((_, port)) = v.rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("`{v}`: `{port}` is not a port number"));
    }
    Ok(v.to_string())
}

pub(crate) fn image_tag(v: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&v.len())
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not a valid tag: up to 128 letters, digits, _ . - (not starting with . or -)"))
    }
}

pub(crate) fn platform(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not a platform: write os/arch, e.g. `linux/amd64` or `linux/arm64`"))
    }
}

/// A cluster or service name, or its ARN.
/// `service`: one service, or several separated by commas or newlines. The first gets `strategy`;
/// the others roll at the same time. Returns (first, others).
pub(crate) fn service_names(v: &str) -> Result<(String, Vec<String>), String> {
    let mut names: Vec<String> = Vec::new();
    for name in v.split([',', '\n']).map(str::trim).filter(|n| !n.is_empty()) {
        let name = ecs_name(name, "service")?;
        if names.contains(&name) {
            return Err(format!("names `{name}` twice: list each service once"));
        }
        names.push(name);
    }
    let mut names = names.into_iter();
    let first = names.next().ok_or("names no service: give one, or several separated by commas or newlines")?;
    Ok((first, names.collect()))
}

pub(crate) fn ecs_name(v: &str, what: &str) -> Result<String, String> {
    if v.starts_with("arn:") {
        return arn(v, "ecs", &format!("{what}/")).map(|_| v.to_string());
    }
    if (1..=255).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not an ECS {what} name: up to 255 letters, digits, - and _ (or the {what}'s ARN)"))
    }
}
