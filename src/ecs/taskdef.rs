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

/// The container of another service's task definition that gets the run's image: the one named
/// `container-name`, else its only container, else the one container running an image of
/// `repository` (the first service's, as a web app and its worker built from one image). None: the
/// only container (`render` takes it by itself).
pub(crate) fn pick_container(
    td: &TaskDefinition,
    container_name: Option<&str>,
    repository: Option<&str>,
) -> Result<Option<String>, String> {
    let containers = td.container_definitions();
    if let Some(wanted) = container_name
        && containers.iter().any(|c| c.name() == Some(wanted))
    {
        return Ok(Some(wanted.to_string()));
    }
    if containers.len() == 1 {
        return Ok(None);
    }
    let same: Vec<&str> = containers
        .iter()
        .filter(|c| repository.is_some() && c.image().map(repository_of) == repository)
        .filter_map(|c| c.name())
        .collect();
    match same.as_slice() {
        [one] => Ok(Some(one.to_string())),
        _ => {
            let names: Vec<String> = containers.iter().map(|c| c.name().unwrap_or("(unnamed)").to_string()).collect();
            let why = match container_name {
                Some(wanted) => format!("none is named `{wanted}`"),
                None => "`container-name` is not set".into(),
            };
            Err(format!(
                "task definition {} has {} containers ({}), {why}, and {} of them runs an image of {}: name the container \
                 that gets the new image the same in every service's task definition and set `container-name`",
                describe(td),
                names.len(),
                list(&names),
                if same.is_empty() { "none" } else { "more than one" },
                repository.map(|r| format!("`{r}`")).unwrap_or_else(|| "the first service's repository".into())
            ))
        }
    }
}

/// An image reference without its tag or digest: `registry/repo:tag@sha256:…` → `registry/repo`.
pub(crate) fn repository_of(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => &image[..last_slash + colon],
        None => image,
    }
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
    fn another_service_gets_the_image_in_the_container_of_the_same_repository() {
        let app = "127.0.0.1:5000/app";
        let td = taskdef(vec![
            container("worker", &format!("{app}:1.4"), &[]),
            container("log-router", "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32", &[]),
        ]);
        assert_eq!(pick_container(&td, Some("web"), Some(app)), Ok(Some("worker".into())));
        assert_eq!(pick_container(&td, Some("log-router"), Some(app)), Ok(Some("log-router".into())));
        let none = pick_container(&td, Some("web"), Some("127.0.0.1:5000/other")).unwrap_err();
        assert!(
            none.contains("none is named `web`, and none of them runs an image of `127.0.0.1:5000/other`"),
            "{none}"
        );
        assert!(none.contains("has 2 containers (`worker`, `log-router`)"), "{none}");
        let one = taskdef(vec![container("anything", "busybox", &[])]);
        assert_eq!(pick_container(&one, Some("web"), Some(app)), Ok(None));
        assert_eq!(repository_of("127.0.0.1:5000/app:1.4@sha256:abc"), app);
        assert_eq!(repository_of("127.0.0.1:5000/app"), app);
        assert_eq!(repository_of("nginx:1.27"), "nginx");
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
