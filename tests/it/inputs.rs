//! Bad inputs stop the run before any network call, with messages that name the input.

use wiremock::MockServer;

use crate::support::{Action, repo_root};

#[tokio::test]
async fn invalid_canary_steps_exit_non_zero_naming_the_input_with_no_aws_call() {
    // Any request at all would land here and be counted.
    let aws = MockServer::start().await;
    let run = Action::new()
        .env("AWS_ENDPOINT_URL", aws.uri())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("GITHUB_ACTIONS", "true")
        .input("aws-region", "us-east-1")
        .input("ecr-repository", "demo-app")
        .input("tags", "v1")
        .input("cluster", "demo")
        .input("service", "web")
        .input("strategy", "canary")
        .input("listener-arn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2")
        .input("canary-steps", "50%:1m, 10%:1m")
        .input("role-to-assume", "")
        .run();
    assert_eq!(run.code, Some(2), "{run}");
    // Workflow commands escape `%` as `%25`; the runner shows it as `%`.
    let expected = "::error title=Invalid input::input `canary-steps`: step 2 (10%25) must be above step 1 (50%25)";
    assert!(run.stdout.contains(expected), "{run}");
    assert!(run.stdout.contains("nothing was called or changed"), "{run}");
    let requests = aws.received_requests().await.unwrap_or_default();
    assert!(requests.is_empty(), "the run made {} request(s) to AWS", requests.len());
}

#[tokio::test]
async fn several_invalid_inputs_are_reported_together_outside_actions() {
    let aws = MockServer::start().await;
    let run = Action::new()
        .env("AWS_ENDPOINT_URL", aws.uri())
        .args(["--aws-region", "mars-1", "--ecr-repository", "Demo", "--tags", "v1", "--dry-run", "maybe"])
        .run();
    assert_eq!(run.code, Some(2), "{run}");
    for expected in
        ["error: Invalid input: input `aws-region`", "input `ecr-repository`", "input `dry-run`", "3 invalid inputs"]
    {
        assert!(run.stdout.contains(expected), "missing {expected:?} in\n{run}");
    }
    assert!(aws.received_requests().await.unwrap_or_default().is_empty());
}

#[test]
fn help_lists_every_input_of_action_yml_and_action_yml_declares_every_input() {
    let run = Action::new().args(["--help"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    let action_yml = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    let declared = yaml_keys_under(&action_yml, "inputs");
    let flags = ecs_deploy_action::input_names();
    assert_eq!(declared, flags, "action.yml inputs and the CLI flags differ");
    for name in &flags {
        assert!(run.stdout.contains(&format!("--{name}")), "--help does not list --{name}");
    }
    let mut outputs = yaml_keys_under(&action_yml, "outputs");
    outputs.sort();
    let mut written: Vec<&str> = crate::support::OUTPUTS
        .iter()
        .chain(&crate::support::PAUSED_OUTPUTS)
        .chain(&crate::support::DRY_RUN_OUTPUTS)
        .copied()
        .collect();
    written.sort();
    assert_eq!(outputs, written, "action.yml declares the outputs a run writes");
}

/// The two-space-indented keys of a top-level YAML section, in order (action.yml is flat enough).
fn yaml_keys_under(yaml: &str, section: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut inside = false;
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            inside = line.trim_end() == format!("{section}:");
            continue;
        }
        if inside && line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            keys.push(line.trim().trim_end_matches(':').to_string());
        }
    }
    keys
}

#[test]
fn iam_policy_help_shows_its_own_flags_not_the_deploys() {
    let run = Action::new().args(["iam-policy", "--help"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    for flag in ["--offline", "--trust", "--repository OWNER/REPO", "--environment NAME", "--ref REF", "--account ID"] {
        assert!(run.stdout.contains(flag), "iam-policy --help lacks {flag}:\n{run}");
    }
    assert!(!run.stdout.contains("--aws-region <REGION>"), "the deploy's own help was printed:\n{run}");
    assert!(run.stderr.is_empty(), "{run}");
}

#[test]
fn previews_prune_help_shows_its_own_flags_and_bad_flags_change_nothing() {
    let run = Action::new().args(["previews", "prune", "--help"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    for flag in ["--cluster NAME", "--older-than AGE", "--repository OWNER/NAME", "--dry-run"] {
        assert!(run.stdout.contains(flag), "previews prune --help lacks {flag}:\n{run}");
    }
    let run = Action::new().env_remove("GITHUB_REPOSITORY").args(["previews", "prune", "--older-than", "soon"]).run();
    assert_eq!(run.code, Some(2), "{run}");
    for said in ["--cluster is required", "--older-than `soon` is not an age", "--repository is required"] {
        assert!(run.stdout.contains(said), "{said}:\n{run}");
    }
    let run = Action::new().args(["previews", "list"]).run();
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stdout.contains("`previews prune`"), "{run}");
}

#[test]
fn setup_help_shows_its_own_flags_and_bad_flags_change_nothing() {
    let run = Action::new().args(["setup", "--help"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    for flag in [
        "--cluster NAME",
        "--service NAME",
        "--listener-arn ARN",
        "--listener-rule-arn ARN",
        "--canary-service NAME",
        "--alarm-name NAME",
        "--apply",
    ] {
        assert!(run.stdout.contains(flag), "setup --help lacks {flag}:\n{run}");
    }
    assert!(!run.stdout.contains("--aws-region <REGION>"), "the deploy's own help was printed:\n{run}");
    // No region, no listener: both said at once, exit 2, no call made (no endpoint is even set).
    let run = Action::new().args(["setup", "--cluster", "c", "--service", "web"]).run();
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stdout.contains("--listener-arn or --listener-rule-arn is required")
            && run.stdout.contains("--aws-region is required"),
        "{run}"
    );
}

#[test]
fn the_readme_tables_of_inputs_and_outputs_are_action_yml() {
    let action_yml = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let inputs = &readme[readme.find("## Inputs").unwrap()..readme.find("## Outputs").unwrap()];
    let outputs = &readme[readme.find("## Outputs").unwrap()..readme.find("## Exit codes").unwrap()];
    // The names in a table's first column: `a` or `a` / `b` (several inputs on one row).
    let first_column = |table: &str| -> std::collections::BTreeSet<String> {
        table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split(" |").next())
            .flat_map(|cell| cell.split(" / ").map(|n| n.trim_matches('`').to_string()).collect::<Vec<_>>())
            .collect()
    };
    let yml = |section| yaml_keys_under(&action_yml, section).into_iter().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(first_column(inputs), yml("inputs"), "README's inputs table and action.yml's inputs differ");
    assert_eq!(first_column(outputs), yml("outputs"), "README's outputs table and action.yml's outputs differ");
}

/// No message a user reads is Rust's `Debug` formatting (`Some("x")`, `Duration { secs: 1 }`,
/// `ServiceError(…)`): every `{…:?}` in the product's code (test modules and test files aside) is a
/// defect this test names with its place.
#[test]
fn no_debug_formatting_reaches_a_user() {
    fn product_code(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                product_code(&path, out);
            } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
                out.push((path.display().to_string(), code));
            }
        }
    }
    let mut files = Vec::new();
    product_code(&repo_root().join("src"), &mut files);
    assert!(files.len() > 50, "read the sources: {}", files.len());
    let found: Vec<String> = files
        .iter()
        .flat_map(|(path, code)| {
            code.lines()
                .enumerate()
                .filter(|(_, l)| l.contains(":?}") || l.contains(":#?}"))
                .map(move |(i, l)| format!("{path}:{}: {}", i + 1, l.trim()))
        })
        .collect();
    assert!(found.is_empty(), "Debug formatting in messages; use Display or words:\n{}", found.join("\n"));
}
