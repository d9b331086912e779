//! The image inputs checked together: an existing image, a known revision's own, or a build with its
//! registry, context, Dockerfile, tags, labels, secrets, builder and cache, named as
//! docker/build-push-action names them (former names accepted with a warning).

use super::check::Check;
use super::parse::{
    boolean, ecr_repository_name, image_reference, image_tag, key_values, looks_like_a_secret, platform, registry_host,
};
use super::validate::{known_revision, set, workspace_path};
use super::{BuildSettings, Builder, CACHE_TAG, ImageSource, Inputs};
use crate::secret::Secret;

/// Where the image comes from: an existing one, or a build pushed to ECR.
pub(super) fn image(c: &mut Check, i: &Inputs, var: &dyn Fn(&str) -> Option<String>) -> Option<ImageSource> {
    let image = set(&i.image);
    let ecr_repository = set(&i.ecr_repository);
    match (image, ecr_repository) {
        (Some(_), Some(_)) => {
            c.fail("image", "and `ecr-repository` are both set: use `image` to deploy an existing image, or `ecr-repository` to build and push one, not both");
            None
        }
        (None, None) if set(&i.task_definition).as_deref().and_then(known_revision).is_some() => {
            Some(ImageSource::AsRegistered)
        }
        (None, None) => {
            c.fail("ecr-repository", "is required to build and push an image: set it to your ECR repository name (e.g. `my-app`), set `image` to deploy an existing image, or set `task-definition` to a known revision (`family:revision`) to deploy it as it is");
            None
        }
        (Some(image), None) => {
            for (name, value) in [
                ("tags", &i.tags),
                ("image-tag", &i.image_tag),
                ("build-args", &i.build_args),
                ("secrets", &i.secrets),
                ("builder", &i.builder),
                ("target", &i.target),
                ("platforms", &i.platforms),
                ("platform", &i.platform),
                ("file", &i.file),
                ("labels", &i.labels),
                ("no-cache", &i.no_cache),
                ("pull", &i.pull),
                ("cache-from", &i.cache_from),
                ("cache-to", &i.cache_to),
            ] {
                if set(value).is_some() {
                    c.warnings.push(format!("`{name}` has no effect with `image`: nothing is built or pushed"));
                }
            }
            let registry = c.parse("registry", i.registry.as_deref(), registry_host);
            c.parse("image", Some(&image), image_reference).map(|uri| ImageSource::Existing { uri, registry })
        }
        (None, Some(repository)) => {
            let repository = c.parse("ecr-repository", Some(&repository), ecr_repository_name);
            let registry = c.parse("registry", i.registry.as_deref(), registry_host);
            let build_args = c.parse("build-args", i.build_args.as_deref(), build_args).unwrap_or_default();
            let secrets = c.parse("secrets", i.secrets.as_deref(), build_secrets).unwrap_or_default();
            let builder = c.parse("builder", i.builder.as_deref(), builder).unwrap_or(Builder::Auto);
            if builder == Builder::Classic && !secrets.is_empty() {
                c.fail(
                    "secrets",
                    "need BuildKit (`RUN --mount=type=secret`), and `builder` is `classic`: set `builder: auto`",
                );
            }
            let platforms = renamed(c, ("platforms", &i.platforms), ("platform", &i.platform));
            let platform = c.parse("platforms", platforms.as_deref(), one_platform);
            // The commit the workspace has checked out, which is what gets built; GITHUB_SHA otherwise.
            let commit = super::git::built_commit(var);
            let tags = match renamed(c, ("tags", &i.tags), ("image-tag", &i.image_tag)).or_else(|| commit.clone()) {
                Some(tags) => {
                    c.parse("tags", Some(&tags), |v| tag_list(v, i.ecr_repository.as_deref().unwrap_or_default()))
                }
                None => {
                    c.fail("tags", "is not set and GITHUB_SHA is empty (not in GitHub Actions?): pass a tag, e.g. `--tags \"$(git rev-parse HEAD)\"`");
                    None
                }
            };
            let labels = c.parse("labels", i.labels.as_deref(), image_labels).unwrap_or_default();
            let no_cache = c.parse("no-cache", i.no_cache.as_deref(), boolean).unwrap_or(false);
            let pull = c.parse("pull", i.pull.as_deref(), boolean).unwrap_or(false);
            let cache_from =
                c.parse("cache-from", i.cache_from.as_deref(), cache_refs).unwrap_or_else(|| vec![CACHE_TAG.into()]);
            let cache_to = match set(&i.cache_to).as_deref().map(str::trim) {
                Some("none") => None,
                Some(tag) => c.parse("cache-to", Some(tag), image_tag),
                None => Some(CACHE_TAG.into()),
            };
            let dockerfile = renamed(c, ("file", &i.file), ("dockerfile", &i.dockerfile));
            let context = workspace_path(set(&i.context).unwrap_or_else(|| ".".into()), var);
            match (repository, tags) {
                (Some(ecr_repository), Some(mut tags)) => {
                    let tag = tags.remove(0);
                    Some(ImageSource::Build(Box::new(BuildSettings {
                        ecr_repository,
                        registry,
                        context,
                        dockerfile: dockerfile.unwrap_or_else(|| "Dockerfile".into()),
                        target: set(&i.target),
                        build_args,
                        secrets,
                        builder,
                        platform,
                        source: commit.unwrap_or_else(|| tag.clone()),
                        tag,
                        extra_tags: tags,
                        labels,
                        no_cache,
                        pull,
                        cache_from,
                        cache_to,
                    })))
                }
                _ => None,
            }
        }
    }
}

/// `KEY=VALUE` lines whose values are not credentials: the classic builder writes every build-arg
/// value into the image's history (`docker history --no-trunc`), for anyone who can pull the image.
fn build_args(v: &str) -> Result<Vec<(String, String)>, String> {
    let pairs = key_values(v, "build argument")?;
    for (key, value) in &pairs {
        if let Some(kind) = looks_like_a_secret(value) {
            return Err(format!(
                "the value of `{key}` looks like {kind} (not shown). Build-arg values are recorded in the image's \
                 history, readable by anyone who can pull the image: give the running service its secrets through \
                 the task definition's `secrets`; a credential the build itself needs goes in `secrets` and is read \
                 with `RUN --mount=type=secret,id={}`",
                key.to_ascii_lowercase()
            ));
        }
    }
    Ok(pairs)
}

/// The value of an input that has a former name: the new one, or the former with a warning that names
/// the new one; both set is an error.
fn renamed(
    c: &mut Check,
    (name, value): (&'static str, &Option<String>),
    (former, old): (&'static str, &Option<String>),
) -> Option<String> {
    match (set(value), set(old)) {
        (Some(_), Some(_)) => {
            c.fail(name, format!("and `{former}` are both set: `{former}` is its former name; keep `{name}`"));
            None
        }
        (Some(v), None) => Some(v),
        (None, Some(v)) => {
            c.warnings.push(format!(
                "`{former}` is now `{name}`, as docker/build-push-action names it: rename it (the former name works in this version)"
            ));
            Some(v)
        }
        (None, None) => None,
    }
}

/// `platforms`: one platform for now.
fn one_platform(v: &str) -> Result<String, String> {
    let all: Vec<&str> = v.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()).collect();
    match all.as_slice() {
        [one] => platform(one),
        _ => Err(format!(
            "`{v}`: one platform for now (a multi-platform image needs a builder this engine does not have)"
        )),
    }
}

/// `tags`: tags of the repository, comma or newline separated, each a tag or `<registry>/<repository>:tag`
/// of the deploy's own repository (as docker/build-push-action writes them).
fn tag_list(v: &str, repository: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for item in v.split([',', '\n']).map(str::trim).filter(|t| !t.is_empty()) {
        let tag = match item.contains('/') {
            true => {
                let not_ours = || {
                    format!(
                        "`{item}` is not a tag of `{repository}`: give the tag (`v1.2`) or `<registry>/{repository}:v1.2`"
                    )
                };
                let (name, tag) = item.rsplit_once(':').filter(|(_, t)| !t.contains('/')).ok_or_else(not_ours)?;
                if repository.is_empty() || !name.ends_with(&format!("/{repository}")) {
                    return Err(not_ours());
                }
                tag
            }
            false => item,
        };
        let tag = image_tag(tag)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        return Err("names no tag: give at least one, e.g. the commit".into());
    }
    Ok(tags)
}

/// `labels`: `KEY=VALUE` lines, keys as OCI writes them (`org.opencontainers.image.title`, `team`).
fn image_labels(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels = Vec::new();
    for (n, line) in v.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim().starts_with('#')) {
        let (key, value) = line.split_once('=').ok_or_else(|| format!("line {} is not KEY=VALUE", n + 1))?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')) {
            return Err(format!("line {}: `{key}` is not a label name: letters, digits, `.`, `-`, `_`, `/`", n + 1));
        }
        labels.push((key.to_string(), value.trim().to_string()));
    }
    Ok(labels)
}

/// `cache-from`: tags of the repository or full references, one a line.
fn cache_refs(v: &str) -> Result<Vec<String>, String> {
    let refs: Vec<String> = v.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    for r in &refs {
        if !r.contains('/') {
            image_tag(r)?;
        } else if r.contains(char::is_whitespace) {
            return Err(format!("`{r}` is not an image reference"));
        }
    }
    Ok(refs)
}

/// `ID=VALUE` lines: the build's secrets. Errors name the id, never the value.
fn build_secrets(v: &str) -> Result<Vec<(String, Secret)>, String> {
    let mut out: Vec<(String, Secret)> = Vec::new();
    for (n, line) in v.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((id, value)) = line.split_once('=') else {
            return Err(format!("line {} is not ID=VALUE (its text is not shown: it may be a secret)", n + 1));
        };
        let id = id.trim();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(format!(
                "line {}: the id must be letters, digits, `_`, `-` or `.`, as `RUN --mount=type=secret,id=npm_token` names it",
                n + 1
            ));
        }
        if out.iter().any(|(seen, _)| seen == id) {
            return Err(format!("`{id}` is given twice"));
        }
        if value.is_empty() {
            return Err(format!("`{id}` is empty: a secret the build reads must have a value"));
        }
        out.push((id.to_string(), Secret::new(value)));
    }
    Ok(out)
}

/// `auto` or `classic`.
fn builder(v: &str) -> Result<Builder, String> {
    match v.trim() {
        "auto" => Ok(Builder::Auto),
        "classic" => Ok(Builder::Classic),
        _ => Err(format!("`{v}` is not a builder: write `auto` (BuildKit when the engine offers it) or `classic`")),
    }
}
