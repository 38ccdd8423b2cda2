"""The layering rule and the README's layout tree, checked on the source."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# layer -> module prefixes it must not import (the rule in ARCHITECTURE.md)
FORBIDDEN = {
    "theory/models": ("theory.engine", "theory.harness", "theory.predictions", "theory.cli", "theory.bench",
                      "experiments"),
    "theory/tasks": ("theory.engine", "theory.harness", "theory.predictions", "theory.cli", "theory.bench",
                     "experiments"),
    "theory/engine": ("theory.harness", "theory.models", "theory.tasks", "theory.predictions", "theory.cli",
                      "experiments"),
    "theory/predictions": ("theory.engine.train", "theory.engine.sweep", "theory.harness", "theory.cli",
                           "experiments"),
    "theory/metrics.py": ("theory.engine", "theory.harness", "experiments", "jax"),
    "theory/bench": ("theory.harness", "theory.predictions"),
}

# the bench times what the claims train: it may read an experiment's Config and run builders
# (experiments.<claim>, .config, .runs), never its parts, judges or figures directly
BENCH_MAY_IMPORT = re.compile(r"^experiments(\.\w+(\.(config|runs)(\.\w+)?)?)?$")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def _files(where: str) -> list[Path]:
    p = REPO / where
    return [p] if p.is_file() else sorted(p.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_import_rule(layer):
    bad = []
    for f in _files(layer):
        for mod in _imports(f):
            if any(mod == b or mod.startswith(b + ".") for b in FORBIDDEN[layer]):
                bad.append(f"{f.relative_to(REPO)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_bench_reads_experiments_only_through_config_and_runs():
    bad = [f"{f.relative_to(REPO)} imports {mod}" for f in _files("theory/bench") for mod in _imports(f)
           if (mod == "experiments" or mod.startswith("experiments.")) and not BENCH_MAY_IMPORT.match(mod)]
    assert not bad, "\n".join(bad)


def test_every_claim_has_its_five_rooms():
    from theory.harness import registry
    for name in registry.names():
        assert (REPO / "experiments" / f"{name}.py").is_file() or (REPO / "experiments" / name).is_dir(), name
        for room in (f"theory/predictions/{name}.py", f"proofs/{name}.py", f"tests/test_{name}.py"):
            assert (REPO / room).is_file(), room


def _layout_paths(block: str) -> list[str]:
    """Paths of an indented tree: a line indented by 2k spaces lives in the folder last named at
    indent 2(k - 1) ("theory/" then "  errors.py" is theory/errors.py)."""
    parents: list[str] = []
    out = []
    for line in block.splitlines():
        m = re.match(r"^( *)([\w./-]+/?)(\s|$)", line)
        if not m or line.startswith("```"):
            continue
        depth = len(m.group(1)) // 2
        parents = parents[:depth]
        path = "".join(parents) + m.group(2)
        out.append(path)
        if path.endswith("/"):
            parents.append(m.group(2))
    return out


def test_readme_layout_tree_names_existing_paths():
    """Every path in the README's layout block exists (the block is between layout markers)."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- layout:start -->", 1)[1].split("<!-- layout:end -->", 1)[0]
    paths = _layout_paths(block)
    for p in paths:
        assert (REPO / p).exists(), f"README layout names {p}, which does not exist"
    assert len(paths) >= 10 and "theory/models/lsa.py" in paths
