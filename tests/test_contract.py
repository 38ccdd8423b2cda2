"""Every committed result follows schema v2, and its judges reproduce its checks from its data."""
from __future__ import annotations

import json

import pytest
from claim_asserts import rejudge

from theory.harness import config as config_lib
from theory.harness import registry, runner
from theory.harness.results import KINDS, OPS, SCHEMA_VERSION, as_json, read_result, verdict_of

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
    assert r["verdict"] == verdict_of(r["checks"], r.get("skipped", []))
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


def _timed():
    """The committed results written since `part_seconds` existed (older ones do not carry it)."""
    return [(n, p) for n, p in _committed()
            if "part_seconds" in json.loads(runner.output_paths(n, preset=p)[0].read_text())]


@pytest.mark.parametrize("name, preset", _timed())
def test_part_seconds_name_the_parts_that_ran(name, preset):
    """`part_seconds` times only parts in `data` (a part restored from an older checkpoint may lack a time)."""
    r = json.loads(runner.output_paths(name, preset=preset)[0].read_text())
    assert r["part_seconds"] and set(r["part_seconds"]) <= set(r["data"]), set(r["part_seconds"]) - set(r["data"])
    assert all(s >= 0 for s in r["part_seconds"].values())


@pytest.mark.parametrize("bad", [[1.0], {"a": -1.0}, {"a": "fast"}])
def test_a_malformed_part_seconds_is_refused(bad):
    from theory.harness.results import result_problem
    r = json.loads(runner.output_paths("scan_snap")[0].read_text())
    assert result_problem(r) is None
    r["part_seconds"] = bad
    assert "part_seconds" in result_problem(r)


@pytest.mark.parametrize("name, preset", _committed())
def test_every_stream_belongs_to_one_part(name, preset):
    """Each part draws only from its own named streams `<part>/...` (no stream shared between parts)."""
    r = json.loads(runner.output_paths(name, preset=preset)[0].read_text())
    parts = {p.name for p in registry.load(name).PARTS}
    owners = {s.split("/")[0] for s in r["streams"]}
    assert owners <= parts, owners - parts


ULP_RTOL = 1e-12
"""A judge recomputed from the stored data may differ from the stored check in the last bits of a
float: numpy picks its reduction kernels (summation order, SIMD width) by the CPU's instruction set,
so a norm or a mean computed on an AVX-512 machine and again on an AVX2 one can differ by a few ulp
(1e-16 relative). 1e-12 is far above that and far below any judged margin; pass/fail, names,
strings and integers must be identical."""


def _same(a, b) -> bool:
    """Equal JSON values, floats equal to ULP_RTOL relative (ints, bools, strings exactly)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= ULP_RTOL * max(abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_same_is_strict_beyond_rounding():
    assert _same({"m": 1.0156787384310602, "p": True}, {"m": 1.0156787384310597, "p": True})
    assert not _same({"m": 1.0156}, {"m": 1.0157})
    assert not _same({"p": True}, {"p": False}) and not _same([1], [1.0]) and not _same({"a": 1}, {"b": 1})


@pytest.mark.parametrize("name, preset", _committed())
def test_judges_reproduce_the_stored_checks(name, preset):
    """The judge is pure: re-judging the stored (predicted, measured) gives the stored checks."""
    r = json.loads(runner.output_paths(name, preset=preset)[0].read_text())
    for part in r["data"]:
        again = rejudge(name, r, part)
        stored = {c["name"]: c for c in r["checks"] if c["part"] == part}
        assert list(again) == list(stored), part
        for n, c in again.items():
            assert _same(as_json(c.to_json()), stored[n]), (n, as_json(c.to_json()), stored[n])


@pytest.mark.parametrize("name, preset", _committed())
def test_committed_result_reads_strictly(name, preset):
    """read_result's full validation (types, names, verdict) accepts every committed result."""
    r = read_result(runner.output_paths(name, preset=preset)[0], claim=name)
    assert r["base_preset"] == preset and r["changed"] == {} and r["skipped"] == []


def _nonfinite(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _nonfinite(v, f"{path}.{k}" if path else k)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _nonfinite(v, f"{path}[{i}]")
    elif x in ("nan", "inf", "-inf"):
        yield path, x


@pytest.mark.parametrize("name, preset", _committed())
def test_non_finite_data_is_declared(name, preset):
    """A committed result holds a non-finite number only where its part declares +inf = "never"
    (Part.unbounded, theory/harness/parts.py); the runner refuses any other as a divergence."""
    r = json.loads(runner.output_paths(name, preset=preset)[0].read_text())
    parts = {p.name: p for p in registry.load(name).PARTS}
    bad = []
    for part, d in r["data"].items():
        for side in ("predicted", "measured"):
            for path, x in _nonfinite(d[side]):
                if not (x == "inf" and path.split(".")[0].split("[")[0] in parts[part].unbounded):
                    bad.append(f"{part}.{side}.{path} = {x}")
    assert not bad, f"undeclared non-finite values (declare Part(..., unbounded=(key,))): {bad[:5]}"


@pytest.mark.parametrize("name", registry.names())
def test_config_markers_name_fields(name):
    """TOLERANCES and MAY_BE_EMPTY name real fields; both presets pass the shared validation."""
    import dataclasses
    import typing
    Config = registry.load(name).Config
    fields = {f.name for f in dataclasses.fields(Config)}
    assert set(config_lib.tolerance_fields(Config)) <= fields
    hints = typing.get_type_hints(Config)
    for f in getattr(Config, "MAY_BE_EMPTY", ()):
        assert typing.get_origin(hints[f]) is tuple, f
    for preset in runner.PRESETS:
        config_lib.validate(getattr(Config, preset)())


def test_fingerprint_and_custom_tag_are_stable():
    Config = registry.load("gd_equivalence").Config
    a, b = Config.quick(), Config.quick()
    assert config_lib.fingerprint(a) == config_lib.fingerprint(b) and len(config_lib.fingerprint(a)) == 64
    c = config_lib.apply_overrides(a, ["d=6"])
    assert config_lib.fingerprint(c) != config_lib.fingerprint(a)
    tag = runner.custom_tag("gd_equivalence", "quick", 0, c)
    assert tag == runner.custom_tag("gd_equivalence", "quick", 0, config_lib.apply_overrides(b, ["d=6"]))
    assert len({tag, runner.custom_tag("gd_equivalence", "quick", 1, c),
                runner.custom_tag("gd_equivalence", "full", 0, c), runner.custom_tag("svm_bias", "quick", 0, c)}) == 4
