"""scripts/tools/module_cycles.py: edges from `crate::` paths and groups, tests left out, cycles found."""

import pathlib

import module_cycles


def write(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_groups_and_nested_paths_are_edges_and_test_code_is_not(tmp_path):
    src = write(tmp_path, {
        "lib.rs": "mod a; mod b; mod c;",
        "a.rs": "use crate::{b::{X, Y}, c};\n#[cfg(test)]\nmod tests { use crate::c::Z; }",
        "b.rs": "fn f() { crate::c::g() }",
        "c/mod.rs": "//! c\n",
        "c/tests.rs": "use crate::a::T;",
    })
    graph = module_cycles.edges(src)
    assert {m: sorted(used) for m, used in graph.items()} == {"a": ["b", "c"], "b": ["c"]}
    assert module_cycles.cycles(graph) == []


def test_a_cycle_is_found_and_fails_the_check(tmp_path, capsys):
    src = write(tmp_path, {
        "lib.rs": "mod outcome; mod run; mod config;",
        "outcome.rs": "use crate::run::ExitStatus;",
        "run.rs": "use crate::outcome::Outcome; use crate::config::Config;",
        "config.rs": "",
    })
    assert module_cycles.cycles(module_cycles.edges(src)) == [["outcome", "run"]]
    assert module_cycles.main(["module_cycles", str(src)]) == 1
    assert "outcome -> run  (outcome.rs)" in capsys.readouterr().err


def test_this_crate_has_no_cycle():
    src = pathlib.Path(__file__).resolve().parents[2] / "src"
    assert module_cycles.cycles(module_cycles.edges(src)) == []
