"""Every committed result follows schema v2, and its judges reproduce its checks from its data."""
from __future__ import annotations

import json

import pytest
from claim_asserts import rejudge

from theory.harness import registry, runner
from theory.harness.results import KINDS, OPS, SCHEMA_VERSION, as_json, verdict_of

V2_FIELDS = {"name", "label", "kind", "op", "predicted", "bound", "measured", "metric", "error", "tolerance",
             "slack", "passed", "why", "part"}


def _committed():
    out = []
    for preset in runner.PRESETS:
        names = registry.names() if preset == "quick" else runner.available(preset=preset)
        out += [(name, preset) for name in names]
    return out


@pytest.mark.parametrize("name, preset", _committed())
def test_result_follows_schema_v2(name, preset):
    json_path, png_path, svg_path = runner.output_paths(name, preset=preset)
    r = json.loads(json_path.read_text())
    assert r["schema"] == SCHEMA_VERSION and r["claim"] == name and r["preset"] == preset
    assert r["verdict"] == verdict_of(r["checks"])
    assert r["streams"] and r["git"]["commit"] and r["versions"]["jax"]
    assert png_path.is_file() and svg_path.is_file()
    names = [c["name"] for c in r["checks"]]
    assert len(names) == len(set(names)), "check names repeat"
    for c in r["checks"]:
        assert set(c) == V2_FIELDS, (c["name"], set(c) ^ V2_FIELDS)
        assert c["kind"] in KINDS and c["op"] in OPS and c["part"] in r["data"]
        assert (float(c["slack"]) >= 0) == c["passed"], c["name"]       # slack may be stored as "-inf"
        if c["op"] in ("<=", ">="):
            assert isinstance(c["bound"], float) and c["predicted"] is None, c["name"]
        if c["op"] == "==":
            assert isinstance(c["predicted"], float) and isinstance(c["tolerance"], float), c["name"]


@pytest.mark.parametrize("name, preset", _committed())
def test_every_stream_belongs_to_one_part(name, preset):
    """Each part draws only from its own named streams `<part>/...` (no stream shared between parts)."""
    r = json.loads(runner.output_paths(name, preset=preset)[0].read_text())
    parts = {p.name for p in registry.load(name).PARTS}
    owners = {s.split("/")[0] for s in r["streams"]}
    assert owners <= parts, owners - parts


@pytest.mark.parametrize("name, preset", _committed())
def test_judges_reproduce_the_stored_checks(name, preset):
    """The judge is pure: re-judging the stored (predicted, measured) gives the stored checks."""
    r = json.loads(runner.output_paths(name, preset=preset)[0].read_text())
    for part in r["data"]:
        again = rejudge(name, r, part)
        stored = {c["name"]: c for c in r["checks"] if c["part"] == part}
        assert list(again) == list(stored), part
        for n, c in again.items():
            assert as_json(c.to_json()) == stored[n], n
