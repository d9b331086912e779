//! Reads the `task-definition` file (the output of `aws ecs describe-task-definition`, or the bare
//! task definition as `register-task-definition --cli-input-json` takes it) with the ECS SDK's own
//! JSON deserializer: the file is served as the answer to a DescribeTaskDefinition call that never
//! leaves the process, so every field ECS knows is read exactly as ECS would return it.

use crate::aws::call_failed;
use std::path::Path;
use std::sync::Arc;

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

/// Answers every request with the same JSON body.
#[derive(Debug, Clone)]
struct FileAnswer(Arc<String>);

impl HttpConnector for FileAnswer {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
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

pub(crate) async fn read(path: &Path) -> Result<(TaskDefinition, Vec<Tag>)> {
    let hint = "check `task-definition` (a path relative to the workspace)";
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}: {hint}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!("{} is not JSON: write it like `aws ecs describe-task-definition` prints it", path.display())
    })?;
    let answer = if value.get("taskDefinition").is_some() {
        value
    } else {
        let tags = value.get("tags").cloned().unwrap_or(serde_json::Value::Null);
        serde_json::json!({ "taskDefinition": value, "tags": tags })
    };
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("file", "file", None, None, "task-definition file"))
        .http_client(FileAnswer(Arc::new(answer.to_string())))
        .build();
    let out = aws_sdk_ecs::Client::from_conf(config)
        .describe_task_definition()
        .task_definition("file")
        .send()
        .await
        .map_err(|e| call_failed("ECS DescribeTaskDefinition", &e))
        .with_context(|| format!("{} is not a task definition as ECS describes it", path.display()))?;
    let td = out.task_definition().cloned().ok_or_else(|| anyhow!("{} has no task definition", path.display()))?;
    if td.family().is_none_or(str::is_empty) {
        bail!("{} has no `family`: name the task definition family", path.display());
    }
    if td.container_definitions().is_empty() {
        bail!("{} has no `containerDefinitions`", path.display());
    }
    Ok((td, out.tags().to_vec()))
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
