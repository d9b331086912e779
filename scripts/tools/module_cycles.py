#!/usr/bin/env python3
"""Fails when the top-level modules of a Rust crate's src/ import each other in a cycle.

The crate's modules are meant to form a one-way graph (config → plan → strategies → pipeline → run;
aws, ecs verbs and progress events below the strategies; report a sink above them): a cycle means a
name lives in the wrong module. An edge is a `crate::<module>` path, `crate::{…}` groups included,
outside test code (from a file's first `#[cfg(test)]` on, and `tests.rs` / `*_tests.rs` files).

Usage: scripts/tools/module_cycles.py [SRC]   (default: src). Prints each cycle with its edges and the
files that make them; exits 1 when there is one.
"""

import pathlib
import re
import sys


def top_level(src: pathlib.Path) -> set[str]:
    names = {p.stem for p in src.glob("*.rs") if p.stem not in ("lib", "main")}
    return names | {p.name for p in src.iterdir() if p.is_dir()}


def without_tests(text: str) -> str:
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]


def used_modules(text: str) -> set[str]:
    """The first path segment of every `crate::…` path, each item of a `crate::{…}` group included."""
    out = set()
    for m in re.finditer(r"\bcrate::", text):
        rest = text[m.end():]
        if not rest.startswith("{"):
            word = re.match(r"\w+", rest)
            if word:
                out.add(word.group(0))
            continue
        depth, item, items = 0, "", []
        for ch in rest:
            if ch == "{":
                depth += 1
                if depth == 1:
                    continue
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    items.append(item)
                    break
            if depth == 1 and ch == ",":
                items.append(item)
                item = ""
            else:
                item += ch
        out |= {re.match(r"\s*(\w*)", it).group(1) for it in items} - {""}
    return out


def edges(src: pathlib.Path) -> dict[str, dict[str, set[str]]]:
    """module -> used module -> the files that use it."""
    modules = top_level(src)
    out: dict[str, dict[str, set[str]]] = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if len(rel.parts) == 1 and rel.stem in ("lib", "main"):
            continue
        if path.name == "tests.rs" or path.name.endswith("_tests.rs"):
            continue
        module = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for used in used_modules(without_tests(path.read_text())):
            if used in modules and used != module:
                out.setdefault(module, {}).setdefault(used, set()).add(str(rel))
    return out


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(argv: list[str]) -> int:
    src = pathlib.Path(argv[1] if len(argv) > 1 else "src")
    graph = edges(src)
    found = cycles(graph)
    for component in found:
        print(f"module_cycles: a cycle through {', '.join(component)}:", file=sys.stderr)
        for a in component:
            for b, files in sorted(graph.get(a, {}).items()):
                if b in component:
                    print(f"  {a} -> {b}  ({', '.join(sorted(files))})", file=sys.stderr)
    if found:
        print("module_cycles: move each name to where its dependents live (see shared/DESIGN.md)", file=sys.stderr)
        return 1
    print(f"module_cycles: {len(graph)} top-level modules import each other one way, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
