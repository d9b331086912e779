"""The release workflow's tag logic (scripts/release/major-tag): the major tag moves only forward."""

import os
import subprocess

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "major-tag")
ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=ENV)


def released(repo, version, major=None):
    """A release commit tagged `version` (and `major`, as the workflow does when it moves it)."""
    git(repo, "commit", "-q", "--allow-empty", "-m", f"Release {version}")
    git(repo, "tag", "-f", version)
    if major:
        git(repo, "tag", "-f", major)


def decide(repo, version):
    out = subprocess.run([SCRIPT, version], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def test_the_major_tag_moves_only_to_a_higher_version(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "root")
    released(tmp_path, "v1.0.0")
    assert decide(tmp_path, "v1.0.0") == "move", "the first release creates v1"
    git(tmp_path, "tag", "-f", "v1", "v1.0.0")
    released(tmp_path, "v1.2.0")
    assert decide(tmp_path, "v1.2.0") == "move"
    git(tmp_path, "tag", "-f", "v1", "v1.2.0")
    # A fix to an older line released later must not take v1 backwards.
    released(tmp_path, "v1.1.5")
    assert decide(tmp_path, "v1.1.5") == "keep v1.2.0"
    released(tmp_path, "v1.10.0")
    assert decide(tmp_path, "v1.10.0") == "move", "versions compare as numbers, not text"
    released(tmp_path, "v2.0.0")
    assert decide(tmp_path, "v2.0.0") == "move", "a new major gets its own tag"


def test_anything_but_a_version_is_refused(tmp_path):
    out = subprocess.run([SCRIPT, "latest"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2 and "not vX.Y.Z" in out.stderr
