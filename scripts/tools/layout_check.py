#!/usr/bin/env python3
"""CONTRIBUTING.md's "Layout" tree against src/: every module file listed once, and nothing listed that
is not there, so the map a new contributor reads stays the map of the code.

Usage: scripts/tools/layout_check.py [DOC [SRC]]   (default: CONTRIBUTING.md src). Prints what is
missing or extra and exits 1; prints one line and exits 0 when the two agree.
"""

import pathlib
import sys


def listed(readme_text):
    """The paths the Layout section's tree names, relative to its root (`src/`)."""
    section = readme_text.split("\n## Layout\n", 1)[-1]
    block = section.split("```text\n", 1)[-1].split("```", 1)[0]
    paths, parents = [], []
    for line in block.splitlines()[1:]:
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2 - 1
        name = line.split()[0]
        parents = parents[:depth]
        if name.endswith("/"):
            parents.append(name.rstrip("/"))
        else:
            paths.append("/".join([*parents, name]))
    return paths


def modules(src):
    return sorted(str(p.relative_to(src)) for p in pathlib.Path(src).rglob("*.rs"))


def main(argv):
    readme = pathlib.Path(argv[1] if len(argv) > 1 else "CONTRIBUTING.md")
    src = pathlib.Path(argv[2] if len(argv) > 2 else "src")
    names = listed(readme.read_text())
    actual = modules(src)
    missing = sorted(set(actual) - set(names))
    extra = sorted(set(names) - set(actual))
    twice = sorted({n for n in names if names.count(n) > 1})
    for what, items in (("not in the Layout of CONTRIBUTING.md", missing), ("in the Layout but not in src", extra),
                        ("listed more than once", twice)):
        for item in items:
            print(f"layout_check: {item}: {what}")
    if missing or extra or twice:
        print(f"layout_check: update the tree under \"## Layout\" in {readme}")
        return 1
    print(f"layout_check: the Layout lists the {len(actual)} modules of {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
