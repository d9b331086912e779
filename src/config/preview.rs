//! `preview`: a service of its own for a pull request while it is open. Which pull request, whether
//! it opened or closed, and whether it comes from a fork are read from the event that started the
//! workflow (`GITHUB_EVENT_PATH`), before any call.

use serde_json::Value;

use super::check::Check;
use super::parse::boolean;
use super::validate::set;
use super::{Inputs, PreviewSettings, Strategy};

/// The default cap on open previews of one base service (`preview-limit`).
pub(crate) const DEFAULT_LIMIT: u32 = 10;

/// `preview` and its inputs; None when `preview` is off (its other inputs then only warn).
pub(super) fn settings(
    c: &mut Check,
    i: &Inputs,
    var: &dyn Fn(&str) -> Option<String>,
    strategy: Option<&Strategy>,
    several: bool,
) -> Option<PreviewSettings> {
    let on = c.parse("preview", i.preview.as_deref(), boolean).unwrap_or(false);
    if !on {
        for (name, value) in [("preview-domain", &i.preview_domain), ("preview-limit", &i.preview_limit)] {
            if set(value).is_some() {
                c.warnings.push(format!("`{name}` has no effect without `preview: true`"));
            }
        }
        return None;
    }
    let domain = c.parse("preview-domain", i.preview_domain.as_deref(), domain);
    let limit = c.parse("preview-limit", i.preview_limit.as_deref(), limit).unwrap_or(DEFAULT_LIMIT);
    let listener_arn = set(&i.listener_arn);
    if listener_arn.is_none() {
        c.fail(
            "listener-arn",
            "is required with `preview: true`: the ALB listener that gets a rule per pull request (routing `pr-<number>.<preview-domain>`, or the path `/pr-<number>/` without a domain, to the preview)",
        );
    }
    if set(&i.listener_rule_arn).is_some() {
        c.fail("listener-rule-arn", "is for canaries: a preview gets a rule of its own on `listener-arn`");
    }
    if !matches!(strategy, None | Some(Strategy::Rolling) | Some(Strategy::Ecs(_))) || set(&i.approval).is_some() {
        c.fail(
            "strategy",
            "a preview is rolled out (it takes no production traffic to shift or judge): leave `strategy` unset or `rolling` with `preview: true`",
        );
    }
    if several {
        c.fail(
            "service",
            "names several services: a preview copies one service; give its name alone with `preview: true`",
        );
    }
    if set(&i.resume).is_some() {
        c.fail("resume", "answers a paused deploy of ECS's own strategy: it has no meaning with `preview: true`");
    }
    for (name, value) in
        [("deployment-environment", &i.deployment_environment), ("environment-url", &i.environment_url)]
    {
        if set(value).is_some() {
            c.warnings.push(format!(
                "`{name}` is ignored with `preview: true`: the Deployment is `preview/pr-<number>` at the preview's URL"
            ));
        }
    }
    let Some(repository) = var("GITHUB_REPOSITORY") else {
        c.fail(
            "preview",
            "needs GITHUB_REPOSITORY (Actions sets it): every preview resource is tagged with its repository and pull request, and only resources with those tags are ever deleted",
        );
        return None;
    };
    let event = match event(var) {
        Ok(event) => event,
        Err(message) => {
            c.fail("preview", message);
            return None;
        }
    };
    Some(PreviewSettings {
        number: event.number,
        closing: event.closing,
        fork: event.fork,
        listener_arn: listener_arn?,
        domain,
        limit,
        run_url: match (var("GITHUB_SERVER_URL"), var("GITHUB_RUN_ID")) {
            (Some(server), Some(id)) => Some(format!("{server}/{repository}/actions/runs/{id}")),
            _ => None,
        },
        repository,
    })
}

/// What the event says of the pull request.
#[derive(Debug, PartialEq)]
pub(super) struct PullRequestEvent {
    pub(super) number: u64,
    pub(super) closing: bool,
    pub(super) fork: bool,
}

/// The pull request of a `pull_request` (or `pull_request_target`) event, and what happened to it.
pub(super) fn event(var: &dyn Fn(&str) -> Option<String>) -> Result<PullRequestEvent, String> {
    let name = var("GITHUB_EVENT_NAME").unwrap_or_default();
    if !matches!(name.as_str(), "pull_request" | "pull_request_target") {
        let shown =
            if name.is_empty() { "no event (GITHUB_EVENT_NAME unset)".to_string() } else { format!("`{name}`") };
        return Err(format!(
            "runs on `pull_request` events (opened, synchronize and reopened deploy the preview, closed removes it); this run is {shown}. Run the preview step in a workflow `on: pull_request` (README, \"Pull-request previews\")"
        ));
    }
    let path = var("GITHUB_EVENT_PATH").ok_or("needs the event's payload (GITHUB_EVENT_PATH, set by Actions)")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("could not read the event payload {path}: {e}"))?;
    let payload: Value =
        serde_json::from_str(&text).map_err(|e| format!("the event payload {path} is not JSON: {e}"))?;
    pull_request(&payload)
}

/// The pull request's number, whether it closed, and whether its head is another repository's.
pub(super) fn pull_request(payload: &Value) -> Result<PullRequestEvent, String> {
    let pr = &payload["pull_request"];
    let number = pr["number"]
        .as_u64()
        .or_else(|| payload["number"].as_u64())
        .ok_or("the event payload names no pull request number")?;
    let closing = match payload["action"].as_str().unwrap_or_default() {
        "opened" | "synchronize" | "reopened" => false,
        "closed" => true,
        other => {
            return Err(format!(
                "runs on the pull request's `opened`, `synchronize`, `reopened` and `closed` actions, not `{other}`: list them in the workflow's `on: pull_request: types: [opened, synchronize, reopened, closed]`"
            ));
        }
    };
    let head = pr["head"]["repo"]["full_name"].as_str();
    let base = pr["base"]["repo"]["full_name"].as_str();
    // A head in another repository (or one whose repository was deleted) is a fork's.
    let fork = base.is_some() && head != base;
    Ok(PullRequestEvent { number, closing, fork })
}

/// `preview-domain`: the domain under which `pr-<number>.<domain>` points at the listener.
fn domain(v: &str) -> Result<String, String> {
    let d = v.trim().trim_start_matches("*.").trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
    };
    if d.contains('.') && d.len() <= 240 && d.split('.').all(label_ok) {
        Ok(d)
    } else {
        Err(format!(
            "`{v}` is not a domain: give the one whose wildcard record points at the load balancer, e.g. `preview.example.com` for `pr-7.preview.example.com`"
        ))
    }
}

fn limit(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n @ 1..=100) => Ok(n),
        _ => Err(format!("`{v}` is not a number of previews: a whole number from 1 to 100")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(action: &str, head: &str) -> Value {
        json!({
            "action": action,
            "number": 7,
            "pull_request": {
                "number": 7,
                "head": { "sha": "abc", "repo": { "full_name": head, "fork": head != "octo/app" } },
                "base": { "repo": { "full_name": "octo/app", "fork": false } }
            }
        })
    }

    #[test]
    fn each_action_deploys_or_removes_and_a_fork_is_known() {
        for action in ["opened", "synchronize", "reopened"] {
            let e = pull_request(&payload(action, "octo/app")).unwrap();
            assert_eq!(e, PullRequestEvent { number: 7, closing: false, fork: false }, "{action}");
        }
        assert!(pull_request(&payload("closed", "octo/app")).unwrap().closing);
        assert!(pull_request(&payload("opened", "someone/app")).unwrap().fork);
        let labeled = pull_request(&payload("labeled", "octo/app")).unwrap_err();
        assert!(labeled.contains("types: [opened, synchronize, reopened, closed]"), "{labeled}");
    }

    #[test]
    fn a_domain_is_checked_and_a_wildcard_accepted() {
        assert_eq!(domain("*.Preview.Example.com.").unwrap(), "preview.example.com");
        assert!(domain("localhost").is_err());
        assert!(domain("bad_domain.com").is_err());
        assert_eq!(limit("10"), Ok(10));
        assert!(limit("0").is_err());
    }
}
