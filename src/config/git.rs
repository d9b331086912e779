//! The commit checked out in the workspace, read from `.git` itself (the action's image has no git):
//! on `issue_comment` and `workflow_dispatch` runs `GITHUB_SHA` is the default branch's head, while
//! the workflow may have checked out a pull request's head, which is what gets built.

use std::path::{Path, PathBuf};

/// The commit a run builds and deploys: the one the workspace (`GITHUB_WORKSPACE`) has checked
/// out, else `GITHUB_SHA`.
pub(crate) fn built_commit(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var("GITHUB_WORKSPACE")
        .filter(|ws| !ws.is_empty())
        .and_then(|ws| head(Path::new(&ws)))
        .or_else(|| var("GITHUB_SHA").filter(|s| !s.is_empty()))
}

/// `HEAD`'s commit in `workspace`, when it is a git work tree (a `.git` directory, or a `.git` file
/// pointing at one); None otherwise.
pub(crate) fn head(workspace: &Path) -> Option<String> {
    let dot_git = workspace.join(".git");
    let git_dir = if dot_git.is_file() {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let dir = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
        if dir.is_relative() { workspace.join(dir) } else { dir }
    } else {
        dot_git
    };
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let sha = match head.strip_prefix("ref:") {
        None => head.to_string(),
        Some(reference) => {
            let reference = reference.trim();
            // A worktree keeps its refs in the common directory.
            let common = std::fs::read_to_string(git_dir.join("commondir"))
                .ok()
                .map(|c| git_dir.join(c.trim()))
                .unwrap_or_else(|| git_dir.clone());
            [&git_dir, &common]
                .iter()
                .find_map(|dir| std::fs::read_to_string(dir.join(reference)).ok())
                .map(|s| s.trim().to_string())
                .or_else(|| {
                    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
                    packed.lines().find_map(|l| {
                        let (sha, name) = l.split_once(' ')?;
                        (name.trim() == reference).then(|| sha.to_string())
                    })
                })?
        }
    };
    let is_sha = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    is_sha.then_some(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

    #[test]
    fn head_is_read_detached_from_a_branch_and_from_packed_refs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(head(dir.path()), None, "not a work tree");
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), format!("{SHA}\n")).unwrap();
        assert_eq!(head(dir.path()).as_deref(), Some(SHA), "detached, as actions/checkout leaves a PR head");
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(git.join("packed-refs"), format!("# pack-refs with: peeled\n{SHA} refs/heads/main\n")).unwrap();
        assert_eq!(head(dir.path()).as_deref(), Some(SHA), "from packed-refs");
        let other = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
        std::fs::write(git.join("refs/heads/main"), format!("{other}\n")).unwrap();
        assert_eq!(head(dir.path()).as_deref(), Some(other), "a loose ref wins over packed-refs");
    }
}
