//! Renders the next task definition revision: the current one with the new image in one container
//! and the given environment set, read-only fields stripped, everything else exactly as it was.

use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, TaskDefinition};

/// What will be registered, and what changed compared with the current revision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rendered {
    /// Registerable: no ARN, revision, status or registration metadata.
    pub(crate) task_definition: TaskDefinition,
    pub(crate) container: String,
    pub(crate) changes: Vec<Change>,
}

/// One visible difference. Environment values are never carried: they may be secrets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Image { from: Option<String>, to: String },
    EnvAdded(String),
    EnvChanged(String),
}

/// Renders from `current`. `container_name` picks the container; without it there must be exactly one.
/// The image of the rendered container (the one `container-name` names, or the only one).
pub(crate) fn container_image(rendered: &Rendered) -> Option<String> {
    rendered
        .task_definition
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(rendered.container.as_str()))
        .and_then(|c| c.image())
        .map(str::to_string)
}

pub(crate) fn render(
    current: &TaskDefinition,
    container_name: Option<&str>,
    image: Option<&str>,
    environment: &[(String, String)],
) -> Result<Rendered, String> {
    let mut next = current.clone();
    strip_read_only(&mut next);
    let containers = next.container_definitions.get_or_insert_with(Vec::new);
    let names: Vec<String> = containers.iter().map(|c| c.name().unwrap_or("(unnamed)").to_string()).collect();
    let index = match container_name {
        Some(wanted) => names.iter().position(|n| n == wanted).ok_or_else(|| {
            format!("container `{wanted}` is not in task definition {}: it has {}", describe(current), list(&names))
        })?,
        None if containers.len() == 1 => 0,
        None if containers.is_empty() => {
            return Err(format!("task definition {} has no containers", describe(current)));
        }
        None => {
            return Err(format!(
                "task definition {} has {} containers ({}): set `container-name` to the one that gets the new image",
                describe(current),
                names.len(),
                list(&names)
            ));
        }
    };
    let container: &mut ContainerDefinition = &mut containers[index];
    let mut changes = Vec::new();
    if let Some(image) = image
        && container.image.as_deref() != Some(image)
    {
        changes.push(Change::Image { from: container.image.clone(), to: image.to_string() });
        container.image = Some(image.to_string());
    }
    let env = container.environment.get_or_insert_with(Vec::new);
    for (key, value) in environment {
        match env.iter_mut().find(|kv| kv.name() == Some(key)) {
            Some(kv) if kv.value() == Some(value) => {}
            Some(kv) => {
                kv.value = Some(value.clone());
                changes.push(Change::EnvChanged(key.clone()));
            }
            None => {
                env.push(KeyValuePair::builder().name(key).value(value).build());
                changes.push(Change::EnvAdded(key.clone()));
            }
        }
    }
    if env.is_empty() && current.container_definitions()[index].environment.is_none() {
        container.environment = None;
    }
    Ok(Rendered { task_definition: next, container: names[index].clone(), changes })
}

/// Puts `image` (e.g. the pushed digest, once known) into the rendered container.
pub(crate) fn set_image(rendered: &mut Rendered, image: &str) {
    let name = rendered.container.clone();
    if let Some(c) =
        rendered.task_definition.container_definitions.iter_mut().flatten().find(|c| c.name() == Some(name.as_str()))
    {
        c.image = Some(image.to_string());
    }
    for change in &mut rendered.changes {
        if let Change::Image { to, .. } = change {
            *to = image.to_string();
        }
    }
}

/// Fields ECS sets itself and refuses on RegisterTaskDefinition.
fn strip_read_only(td: &mut TaskDefinition) {
    td.task_definition_arn = None;
    td.revision = 0;
    td.status = None;
    td.requires_attributes = None;
    td.compatibilities = None;
    td.registered_at = None;
    td.deregistered_at = None;
    td.delete_requested_at = None;
    td.registered_by = None;
}

/// `family:revision`, the way people name a revision.
pub(crate) fn describe(td: &TaskDefinition) -> String {
    match (td.family(), td.revision()) {
        (Some(f), r) if r > 0 => format!("{f}:{r}"),
        (Some(f), _) => f.to_string(),
        _ => td.task_definition_arn().unwrap_or("(unnamed)").to_string(),
    }
}

fn list(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{Compatibility, TaskDefinitionStatus};

    use super::*;

    fn container(name: &str, image: &str, env: &[(&str, &str)]) -> ContainerDefinition {
        let mut b = ContainerDefinition::builder().name(name).image(image).essential(true).memory(256);
        for (k, v) in env {
            b = b.environment(KeyValuePair::builder().name(*k).value(*v).build());
        }
        b.build()
    }

    fn taskdef(containers: Vec<ContainerDefinition>) -> TaskDefinition {
        TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7")
            .family("web")
            .revision(7)
            .status(TaskDefinitionStatus::Active)
            .compatibilities(Compatibility::Fargate)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .set_container_definitions(Some(containers))
            .build()
    }

    #[test]
    fn only_image_and_environment_change_and_read_only_fields_go() {
        let current = taskdef(vec![container("web", "old:1", &[("A", "1"), ("B", "2")])]);
        let env = vec![("B".to_string(), "3".to_string()), ("C".to_string(), "4".to_string())];
        let rendered = render(&current, None, Some("repo@sha256:abc"), &env).unwrap();
        assert_eq!(rendered.container, "web");
        assert_eq!(
            rendered.changes,
            [
                Change::Image { from: Some("old:1".into()), to: "repo@sha256:abc".into() },
                Change::EnvChanged("B".into()),
                Change::EnvAdded("C".into())
            ]
        );
        let mut expected = taskdef(vec![container("web", "repo@sha256:abc", &[("A", "1"), ("B", "3"), ("C", "4")])]);
        strip_read_only(&mut expected);
        assert_eq!(rendered.task_definition, expected);
        assert_eq!(rendered.task_definition.task_definition_arn, None);
        assert_eq!(rendered.task_definition.revision, 0);
        assert_eq!(rendered.task_definition.compatibilities, None);
    }

    #[test]
    fn several_containers_need_a_name_and_the_error_lists_them() {
        let current = taskdef(vec![container("web", "a", &[]), container("envoy", "b", &[])]);
        let err = render(&current, None, Some("x"), &[]).unwrap_err();
        assert_eq!(
            err,
            "task definition web:7 has 2 containers (`web`, `envoy`): set `container-name` to the one that gets the new image"
        );
        let err = render(&current, Some("api"), Some("x"), &[]).unwrap_err();
        assert!(err.contains("container `api` is not in task definition web:7: it has `web`, `envoy`"), "{err}");
        let rendered = render(&current, Some("envoy"), Some("x"), &[]).unwrap();
        assert_eq!(rendered.task_definition.container_definitions()[0].image(), Some("a"));
        assert_eq!(rendered.task_definition.container_definitions()[1].image(), Some("x"));
    }

    #[test]
    fn no_environment_stays_no_environment() {
        let current = taskdef(vec![container("web", "a", &[])]);
        let rendered = render(&current, None, Some("a"), &[]).unwrap();
        assert!(rendered.changes.is_empty());
        assert_eq!(rendered.task_definition.container_definitions()[0].environment, None);
    }

    #[test]
    fn set_image_updates_container_and_change() {
        let current = taskdef(vec![container("web", "a", &[])]);
        let mut rendered = render(&current, None, Some("repo:tag"), &[]).unwrap();
        set_image(&mut rendered, "repo@sha256:1");
        assert_eq!(rendered.task_definition.container_definitions()[0].image(), Some("repo@sha256:1"));
        assert_eq!(rendered.changes, [Change::Image { from: Some("a".into()), to: "repo@sha256:1".into() }]);
    }
}
