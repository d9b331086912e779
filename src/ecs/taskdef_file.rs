//! Reads the `task-definition` file (the output of `aws ecs describe-task-definition`, or the bare
//! task definition as `register-task-definition --cli-input-json` takes it) with the ECS SDK's own
//! JSON deserializer: the file is served as the answer to a DescribeTaskDefinition call that never
//! leaves the process, so every field ECS knows is read exactly as ECS would return it. Then the
//! RegisterTaskDefinition request it becomes is built the same way, in process, and every key of the
//! file must be in it: a typo, a misplaced field or one newer than the SDK is refused by its path,
//! never dropped (`taskdef_check`).

use crate::aws::call_failed;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::taskdef_check::{self as check, Step};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::types::{Tag, TaskDefinition};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// Answers every request with the same JSON body, and keeps the last request's body.
#[derive(Debug, Clone)]
struct FileAnswer(Arc<String>, Arc<Mutex<Option<String>>>);

impl HttpConnector for FileAnswer {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let sent = request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned());
        *self.1.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = sent;
        let body = SdkBody::from(self.0.as_str());
        let response = StatusCode::try_from(200u16)
            .map(|status| HttpResponse::new(status, body))
            .map_err(|e| ConnectorError::other(e.into(), None));
        HttpConnectorFuture::ready(response)
    }
}

impl HttpClient for FileAnswer {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn client(answer: String) -> (aws_sdk_ecs::Client, Arc<Mutex<Option<String>>>) {
    let sent = Arc::new(Mutex::new(None));
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("file", "file", None, None, "task-definition file"))
        .http_client(FileAnswer(Arc::new(answer), sent.clone()))
        .build();
    (aws_sdk_ecs::Client::from_conf(config), sent)
}

/// The task definition and tags as the SDK reads them from a DescribeTaskDefinition answer.
async fn deserialize(answer: &Value) -> Result<(TaskDefinition, Vec<Tag>)> {
    let (ecs, _) = client(answer.to_string());
    let out = ecs
        .describe_task_definition()
        .task_definition("file")
        .send()
        .await
        .map_err(|e| call_failed("ECS DescribeTaskDefinition", &e))?;
    let td = out.task_definition().cloned().ok_or_else(|| anyhow!("no task definition"))?;
    Ok((td, out.tags().to_vec()))
}

pub(crate) async fn read(path: &Path) -> Result<(TaskDefinition, Vec<Tag>)> {
    let hint = "check `task-definition` (a path relative to the workspace)";
    let file = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {file}: {hint}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{file} is not JSON: {e} (line {}, column {}): write it like `aws ecs describe-task-definition` prints it",
            e.line(),
            e.column()
        )
    })?;
    // Paths are shown from the task definition; `prefix` is where it sits in the file.
    let (answer, prefix) = if value.get("taskDefinition").is_some() {
        (value, vec![Step::Key("taskDefinition".into())])
    } else {
        let tags = value.get("tags").cloned().unwrap_or(Value::Null);
        (serde_json::json!({ "taskDefinition": value, "tags": tags }), Vec::new())
    };
    let written = answer.get("taskDefinition").cloned().unwrap_or(Value::Null);
    let at = |p: &[Step]| {
        let full: Vec<Step> = prefix.iter().cloned().chain(p.iter().cloned()).collect();
        check::position(&text, &full).map(|(l, c)| format!(" (line {l}, column {c})")).unwrap_or_default()
    };
    let (td, tags) = match deserialize(&answer).await {
        Ok(read) => read,
        // The SDK's own words ("unreadable answer") would blame AWS: the file is what is wrong.
        Err(_) => {
            let bad = locate_unreadable(&answer).await;
            let shown: Vec<Step> = bad.iter().skip(1).cloned().collect();
            bail!(
                "{file}: `{}`{} does not have the type ECS expects (numbers such as ports and sizes are written \
                 without quotes, lists in [ ], objects in {{ }})",
                check::show(&shown),
                at(&shown)
            );
        }
    };
    if td.family().is_none_or(str::is_empty) {
        bail!("{file} has no `family`: name the task definition family");
    }
    if td.container_definitions().is_empty() {
        bail!("{file} has no `containerDefinitions`");
    }
    let sent = request_body(&td, &tags).await?;
    let lost = check::lost_keys(&written, &sent);
    if !lost.is_empty() {
        let each: Vec<String> = lost
            .iter()
            .map(|p| {
                let key = match p.last() {
                    Some(Step::Key(k)) => k.as_str(),
                    _ => "",
                };
                let parent = &p[..p.len().saturating_sub(1)];
                let hint = check::suggest(parent, key).map(|s| format!(": {s}")).unwrap_or_default();
                format!("`{}`{}{hint}", check::show(p), at(p))
            })
            .collect();
        bail!(
            "{file}: ECS does not know {} (a typo, a field in the wrong place, or one newer than this action), so the \
             registered revision would not be the one written: {}",
            if lost.len() == 1 { "this key" } else { "these keys" },
            each.join("; ")
        );
    }
    Ok((td, tags))
}

/// The RegisterTaskDefinition body this action would send for `td`, built in process.
async fn request_body(td: &TaskDefinition, tags: &[Tag]) -> Result<Value> {
    let answer =
        r#"{"taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/file:1"}}"#;
    let (ecs, sent) = client(answer.to_string());
    super::register::register(&ecs, td, tags).await?;
    let body = sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().unwrap_or_default();
    serde_json::from_str(&body).context("internal: the request body is not JSON")
}

/// The deepest path of `answer` whose removal lets the SDK read it: the value of the wrong type.
async fn locate_unreadable(answer: &Value) -> Vec<Step> {
    let mut path = vec![Step::Key("taskDefinition".into())];
    'deeper: loop {
        for child in check::children(answer, &path) {
            if deserialize(&check::without(answer, &child)).await.is_ok() {
                path = child;
                continue 'deeper;
            }
        }
        return path;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), json).unwrap();
        f
    }

    #[tokio::test]
    async fn reads_describe_output_with_every_field_ecs_knows() {
        let f = file(
            r#"{"taskDefinition": {"family": "web", "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
                "revision": 3, "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                "requiresCompatibilities": ["FARGATE"],
                "containerDefinitions": [{"name": "web", "image": "nginx", "essential": true,
                    "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                    "healthCheck": {"command": ["CMD", "true"], "interval": 30},
                    "environment": [{"name": "A", "value": "1"}]}]},
               "tags": [{"key": "team", "value": "platform"}]}"#,
        );
        let (td, tags) = read(f.path()).await.unwrap();
        assert_eq!(td.family(), Some("web"));
        assert_eq!(td.revision(), 3);
        let c = &td.container_definitions()[0];
        assert_eq!(c.port_mappings()[0].container_port(), Some(8080));
        assert_eq!(c.health_check().unwrap().interval(), Some(30));
        assert_eq!(tags[0].key(), Some("team"));
    }

    #[tokio::test]
    async fn reads_a_bare_task_definition_with_its_tags() {
        let f = file(
            r#"{"family": "api", "containerDefinitions": [{"name": "api", "image": "x"}], "tags": [{"key": "k", "value": "v"}]}"#,
        );
        let (td, tags) = read(f.path()).await.unwrap();
        assert_eq!(td.family(), Some("api"));
        assert_eq!(tags.len(), 1);
    }

    fn resource(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/taskdefs").join(name)
    }

    #[tokio::test]
    async fn a_file_with_every_field_comes_through_whole_tags_included() {
        let (td, tags) = read(&resource("every-field.json")).await.unwrap();
        assert_eq!(td.volumes().len(), 3);
        assert_eq!(td.container_definitions()[0].linux_parameters().unwrap().tmpfs().len(), 1);
        assert_eq!(td.proxy_configuration().unwrap().properties().len(), 2);
        assert_eq!(tags.len(), 2);
    }

    #[tokio::test]
    async fn a_misplaced_key_and_a_typo_are_refused_by_path_line_and_column_with_the_right_spelling() {
        let f = file(
            "{\n  \"family\": \"web\",\n  \"containerPort\": 8080,\n  \"containerDefinitions\": [\n    {\"name\": \"web\", \"image\": \"x\", \"portMapings\": [{\"containerPort\": 8080}]}\n  ]\n}",
        );
        let e = format!("{:#}", read(f.path()).await.unwrap_err());
        assert!(e.contains("ECS does not know these keys"), "{e}");
        assert!(e.contains("`containerPort` (line 3, column 3): `containerPort` belongs in `portMappings`"), "{e}");
        assert!(
            e.contains("`containerDefinitions[0].portMapings` (line 5, column 35): did you mean `portMappings`?"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_port_written_as_a_string_is_refused_by_path_line_and_column() {
        let f = file(
            "{\"taskDefinition\": {\n  \"family\": \"web\",\n  \"containerDefinitions\": [{\"name\": \"web\", \"image\": \"x\",\n    \"portMappings\": [{\"containerPort\": \"8080\"}]}]}}",
        );
        let e = format!("{:#}", read(f.path()).await.unwrap_err());
        assert!(
            e.contains("`containerDefinitions[0].portMappings[0].containerPort` (line 4, column 23) does not have the type ECS expects"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn invalid_json_is_refused_with_line_and_column() {
        let f = file("{\n  \"family\": \"web\",\n  \"containerDefinitions\": [\n}");
        let e = format!("{:#}", read(f.path()).await.unwrap_err());
        assert!(e.contains("is not JSON") && e.contains("(line 4, column 1)"), "{e}");
    }

    #[tokio::test]
    async fn bad_files_say_what_is_wrong() {
        let missing = read(Path::new("/nonexistent/td.json")).await.unwrap_err().to_string();
        assert!(missing.contains("check `task-definition`"), "{missing}");
        let not_json = file("family: web");
        assert!(read(not_json.path()).await.unwrap_err().to_string().contains("is not JSON"));
        let no_family = file(r#"{"containerDefinitions": [{"name": "a"}]}"#);
        assert!(format!("{:#}", read(no_family.path()).await.unwrap_err()).contains("has no `family`"));
        let wrong_type = file(r#"{"family": "web", "containerDefinitions": "nope"}"#);
        assert!(read(wrong_type.path()).await.is_err());
    }
}
