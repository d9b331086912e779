"""scripts/tools/layout_check.py: the tree read with its nesting, missing and extra modules found."""

import pathlib

import layout_check

README = """# x

## Layout

```text
src/
  main.rs              the entry point
  config/              inputs
    mod.rs             the config
    parse.rs           parsers
  run.rs               one run
```

## Next
"""


def test_the_tree_is_read_with_its_nesting():
    assert layout_check.listed(README) == ["main.rs", "config/mod.rs", "config/parse.rs", "run.rs"]


def test_a_module_missing_or_extra_fails(tmp_path, capsys):
    src = tmp_path / "src"
    for name in ["main.rs", "config/mod.rs", "config/parse.rs", "config/steps.rs"]:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("")
    (tmp_path / "README.md").write_text(README)
    assert layout_check.main(["layout_check", str(tmp_path / "README.md"), str(src)]) == 1
    out = capsys.readouterr().out
    assert "config/steps.rs: not in the Layout of CONTRIBUTING.md" in out
    assert "run.rs: in the Layout but not in src" in out


def test_contributing_lists_every_module():
    root = pathlib.Path(__file__).resolve().parents[2]
    assert layout_check.main(["layout_check", str(root / "CONTRIBUTING.md"), str(root / "src")]) == 0
