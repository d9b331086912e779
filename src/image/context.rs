//! The build context as the Docker engine wants it: a tar of the context directory without what
//! `.dockerignore` excludes (Docker's rules: patterns relative to the context root, `*` `?` `**`,
//! `!` re-includes, the last match wins, a matched directory excludes what is inside it).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use globset::{GlobBuilder, GlobMatcher};

pub(crate) struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .with_context(|| format!(".dockerignore: `{line}` is not a valid pattern"))?;
            rules.push((glob.compile_matcher(), negated));
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out.
    pub(crate) fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (glob, negated) in &self.rules {
            if matches_or_parent(glob, path) {
                excluded = !negated;
            }
        }
        excluded
    }

    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, negated)| *negated)
    }
}

/// Docker's filepath.Clean of a pattern: no leading `/` or `./`, no trailing `/`.
fn clean(pattern: &str) -> String {
    let mut p = pattern.trim_start_matches('/');
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    p.trim_end_matches('/').to_string()
}

fn matches_or_parent(glob: &GlobMatcher, path: &str) -> bool {
    if glob.is_match(path) {
        return true;
    }
    let mut parent = path;
    while let Some((head, _)) = parent.rsplit_once('/') {
        if glob.is_match(head) {
            return true;
        }
        parent = head;
    }
    false
}

/// The ignore file that applies to `dockerfile`: `<Dockerfile>.dockerignore` beside it when there is
/// one (BuildKit's rule, so that several Dockerfiles share a context), else the context's
/// `.dockerignore`; its path relative to the context.
fn ignore_file(context: &Path, dockerfile: &str) -> Option<String> {
    let own = format!("{dockerfile}.dockerignore");
    [own, ".dockerignore".to_string()].into_iter().find(|f| context.join(f).is_file())
}

/// The tar of `context`, honouring its ignore file (above). The Dockerfile and the ignore files always
/// go in (the engine needs them), as the Docker CLI does.
pub(crate) fn tar(context: &Path, dockerfile: &str) -> Result<Vec<u8>> {
    if !context.is_dir() {
        bail!(
            "the build context {} is not a directory: check `context` (relative to the workspace)",
            context.display()
        );
    }
    let ignore = match ignore_file(context, dockerfile) {
        Some(file) => {
            let text =
                std::fs::read_to_string(context.join(&file)).with_context(|| format!("could not read {file}"))?;
            DockerIgnore::parse(&text)?
        }
        None => DockerIgnore { rules: Vec::new() },
    };
    if !context.join(dockerfile).is_file() {
        bail!("no Dockerfile at {}: check `dockerfile` (relative to the context)", context.join(dockerfile).display());
    }
    let always = [clean(dockerfile), ".dockerignore".to_string(), clean(&format!("{dockerfile}.dockerignore"))];
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(context.join(&dir))
            .with_context(|| format!("could not read {}", context.join(&dir).display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = dir.join(entry.file_name());
            let rel_text = rel.to_string_lossy().replace('\\', "/");
            let kind = entry.file_type()?;
            let excluded = ignore.excludes(&rel_text) && !always.contains(&rel_text);
            if kind.is_dir() {
                // A directory is walked when it is kept, or when an exception might re-include
                // something inside it.
                if !excluded || ignore.has_exceptions() {
                    if !excluded {
                        builder.append_dir(&rel, entry.path())?;
                    }
                    stack.push(rel);
                }
            } else if !excluded {
                builder
                    .append_path_with_name(entry.path(), &rel)
                    .with_context(|| format!("could not add {} to the build context", rel.display()))?;
            }
        }
    }
    builder.into_inner().context("could not finish the build context")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn patterns_are_rooted_at_the_context() {
        let i = ignore("target\n*.log\n/secret.env\n");
        assert!(i.excludes("target"));
        assert!(i.excludes("target/debug/app"), "contents of an excluded directory");
        assert!(i.excludes("build.log"));
        assert!(!i.excludes("logs/build.log"), "* does not cross directories");
        assert!(i.excludes("secret.env"));
        assert!(!i.excludes("src/target.rs"));
    }

    #[test]
    fn double_star_and_exceptions_last_match_wins() {
        let i = ignore("**/*.md\n!README.md\n*\n!dist/app\n");
        assert!(i.excludes("docs/a.md"));
        assert!(i.excludes("README.md"), "`*` comes after the exception");
        assert!(!i.excludes("dist/app"));
        assert!(i.excludes("dist/other"));
    }

    #[test]
    fn comments_blank_lines_and_dot_slash() {
        let i = ignore("# comment\n\n./node_modules/\n");
        assert!(i.excludes("node_modules/x/y.js"));
        assert!(!i.excludes("comment"));
    }

    #[test]
    fn the_tar_leaves_out_ignored_files_but_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "secret.txt\nDockerfile\ncache\n").unwrap();
        std::fs::write(root.join("secret.txt"), "s3cr3t").unwrap();
        std::fs::write(root.join("app"), "bin").unwrap();
        std::fs::create_dir_all(root.join("cache/deep")).unwrap();
        std::fs::write(root.join("cache/deep/blob"), "x").unwrap();
        let bytes = tar(root, "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "app"]);
    }

    #[test]
    fn a_dockerfiles_own_ignore_file_comes_before_the_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("docker")).unwrap();
        std::fs::write(root.join("docker/api.Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join("docker/api.Dockerfile.dockerignore"), "web\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "api\n").unwrap();
        std::fs::write(root.join("api"), "a").unwrap();
        std::fs::write(root.join("web"), "w").unwrap();
        let names = |dockerfile: &str| {
            let bytes = tar(root, dockerfile).unwrap();
            let mut archive = tar::Archive::new(bytes.as_slice());
            let mut names: Vec<String> = archive
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with('/') && !n.starts_with("docker"))
                .collect();
            names.sort();
            names
        };
        assert_eq!(names("docker/api.Dockerfile"), [".dockerignore", "api"], "its own file: web is left out");
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        assert_eq!(names("Dockerfile"), [".dockerignore", "Dockerfile", "web"], "none of its own: .dockerignore");
    }

    #[test]
    fn missing_context_or_dockerfile_says_which_input() {
        let dir = tempfile::tempdir().unwrap();
        let err = tar(&dir.path().join("nope"), "Dockerfile").unwrap_err().to_string();
        assert!(err.contains("check `context`"), "{err}");
        let err = tar(dir.path(), "Dockerfile").unwrap_err().to_string();
        assert!(err.contains("check `dockerfile`"), "{err}");
    }
}
