"""Property-based tests (hypothesis) of every way bad input reaches the sandbox.

* `--set` values: for every registered claim and every Config field, invalid values (wrong-type text,
  NaN, +-inf, ints beyond int32, zero or negative sizes, malformed, empty and too-short tuples, any
  value of a tolerance field) go through the CLI's parser and the claim's validation
  (`runner.build_config`): each is refused with a one-line SandboxError naming the field, never
  another exception. Arbitrary text for any field is either accepted or refused that way.
* A sample through `theory.cli.main`: exit 2, one line on stderr, nothing written under --out.
* Corrupt result files of every kind (truncated, garbage bytes, non-UTF-8, wrong types, missing keys,
  wrong schema): `read_result` refuses each with one SandboxError line naming the file, and
  `sandbox plot` / `sandbox report` exit 2.

What counts as invalid is stated here, from the claims' definitions, not read from the validation
code: ZERO_OK / NEGATIVE_OK list the fields where 0 or a negative value is meaningful (every other
number is a size, rate, step count or scale and must be positive), NEEDS_TWO the tuples a claim
needs at least two values of. Examples are derandomized (the same cases on every run).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tempfile
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability import record

from theory.cli import main
from theory.errors import SandboxError
from theory.harness import config as config_lib
from theory.harness import registry, runner
from theory.harness.results import REQUIRED_KEYS, read_result

REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
INT32_MAX = 2 ** 31 - 1

ZERO_OK = {"rank_growth": {"reg_rho", "reg_w_star", "att_a_star", "att_b_star"},
           "scan_snap": {"fig6_momentum"}, "length_generalization": {"d_ff", "clip"},
           "svm_bias": {"path_kick"}}   # path_kick = 0: no kick round (theory/predictions/svm_bias.py)
NEGATIVE_OK = {"rank_growth": {"reg_w_star", "att_a_star", "att_b_star"}}
NEEDS_TWO = {"scan_snap": {"snap_eta_Y", "invariant_ratios", "order_eta_Y", "fig6_ratios", "snap_limit_eta_Y",
                           "finite_T"},
             "svm_bias": {"sweep_ds", "path_radii"}, "rank_growth": {"rescale_alphas"}}


def _kind(typ) -> tuple[str, str | None]:
    """('scalar' | 'tuple', element type name) of a Config field's annotation."""
    if typing.get_origin(typ) is tuple:
        return "tuple", typing.get_args(typ)[0].__name__
    return "scalar", typ.__name__


def _fields() -> list[tuple[str, str, str, str]]:
    """(claim, field, 'scalar' | 'tuple', element type) for every field of every registered claim."""
    out = []
    for name in registry.names():
        Config = registry.load(name).Config
        hints = typing.get_type_hints(Config)
        out += [(name, f.name, *_kind(hints[f.name])) for f in dataclasses.fields(Config)]
    return out


FIELDS = _fields()
NUMERIC = [f for f in FIELDS if f[3] in ("int", "float")]
TOLERANCE = [(c, f) for c in registry.names() for f in config_lib.tolerance_fields(registry.load(c).Config)]
SETTABLE_NUMERIC = [f for f in NUMERIC if (f[0], f[1]) not in TOLERANCE]
TUPLES = [f for f in FIELDS if f[2] == "tuple" and (f[0], f[1]) not in TOLERANCE]


def _refused(claim: str, field: str, text: str) -> str:
    """Assert `--set field=text` is refused by a one-line SandboxError naming the field; return it."""
    with pytest.raises(SandboxError) as e:
        runner.build_config(claim, "quick", [f"{field}={text}"])
    message = str(e.value)
    assert field in message and "\n" not in message, (claim, field, text, message)
    return message


def _accepted_or_refused(claim: str, field: str, text: str) -> bool:
    try:
        runner.build_config(claim, "quick", [f"{field}={text}"])
        return True
    except SandboxError as e:
        assert field in str(e) and "\n" not in str(e), (claim, field, text, str(e))
        return False


def _number_text(elem: str, value) -> str:
    return str(int(value)) if elem == "int" else repr(float(value))


def _elem_text(kind: str, elem: str, item: str) -> str:
    """A --set text whose (first) element is `item`: the value itself, or a one-element tuple."""
    return item if kind == "scalar" else f"({item},)"


# --- invalid values through the parser and the claim's validation ----------------------------------

@settings(max_examples=120, **SETTINGS)
@given(st.data())
def test_invalid_numbers_are_refused_naming_the_field(data):
    claim, field, kind, elem = data.draw(st.sampled_from(SETTABLE_NUMERIC), label="field")
    bad = [st.sampled_from(["nan", "NaN", "inf", "-inf", "+inf", "Infinity", "1e999"]),
           st.sampled_from(["abc", "1..2", "0x10", "--1", "1e", "", "٣", "none", "true" if elem != "int" else "1.5"])]
    if elem == "int":                                   # JAX sees ints as int32
        bad += [st.integers(INT32_MAX + 1, 10 ** 30).map(str), st.integers(-10 ** 30, -INT32_MAX - 1).map(str)]
    if field not in ZERO_OK.get(claim, set()):
        bad.append(st.just("0"))
    if field not in NEGATIVE_OK.get(claim, set()) | ZERO_OK.get(claim, set()):
        bad.append(st.integers(-10 ** 6, -1).map(str))
    item = data.draw(st.one_of(*bad), label="value")
    text = _elem_text(kind, elem, item)
    if kind == "tuple" and item == "":
        text = "(,)"
    _refused(claim, field, text)
    record("fuzzed --set", f"hypothesis: NaN, +-inf, ints beyond int32, 0 and negative sizes, wrong-type text for "
           f"the {len(SETTABLE_NUMERIC)} numeric fields of the {len(registry.names())} claims",
           "each refused before any work: one SandboxError line naming the field (exit 2 through the CLI)")


@settings(max_examples=60, **SETTINGS)
@given(st.data())
def test_malformed_empty_and_short_tuples_are_refused(data):
    claim, field, kind, elem = data.draw(st.sampled_from(TUPLES), label="field")
    default = getattr(registry.load(claim).Config.quick(), field)
    good = [str(v) for v in default] or (["even_pairs"] if elem == "str" else ["1"])
    a, b = good[0], good[-1]
    choices = [f"({a},{b}", f"{a},,{b}", f",{a}", f"(({a},{b}))", f"[{a},{b})", "(,)", f"{a} {b})"]
    if field not in getattr(registry.load(claim).Config, "MAY_BE_EMPTY", ()):
        choices += ["", "()", "[]"]
    if field in NEEDS_TWO.get(claim, set()):
        choices.append(f"({a},)")
    _refused(claim, field, data.draw(st.sampled_from(choices), label="text"))
    record("fuzzed --set", f"hypothesis: malformed ((a,b  a,,b  ,a  nested brackets), empty and too-short values "
           f"for the {len(TUPLES)} tuple fields", "each refused in one line naming the field; () accepted only "
           "where it leaves a part out")


@settings(max_examples=40, **SETTINGS)
@given(st.sampled_from(TOLERANCE), st.sampled_from(["0", "1", "inf", "0.5", "(1,2)", "1e9"]))
def test_tolerance_fields_are_not_settable(field, text):
    claim, name = field
    assert "tolerance" in _refused(claim, name, text)
    record("fuzzed --set", f"any value for the {len(TOLERANCE)} tolerance / judge-threshold fields",
           "refused in one line: tolerances belong to the claim")


@settings(max_examples=150, **SETTINGS)
@given(st.sampled_from(FIELDS), st.one_of(
    st.text(max_size=12), st.integers(-10 ** 12, 10 ** 12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.integers(-5, 5000), max_size=4).map(lambda v: "(" + ",".join(map(str, v)) + ")"),
    st.lists(st.floats(-10, 1e4), max_size=4).map(lambda v: "(" + ",".join(map(repr, v)) + ")")))
def test_any_text_is_accepted_or_refused_in_one_line(field, text):
    """Arbitrary text for any field: a valid config or a one-line SandboxError naming the field, never
    another exception."""
    claim, name, kind, elem = field
    _accepted_or_refused(claim, name, text.replace("\n", " "))
    record("fuzzed --set", f"hypothesis: arbitrary text for each of the {len(FIELDS)} config fields",
           "a valid config or one SandboxError line naming the field; never another exception")


# --- the CLI: exit 2, one line, nothing written -----------------------------------------------------
CLI_SAMPLE = [("gd_equivalence", "lr=nan"), ("svm_bias", "eta=inf"), ("rank_growth", "seeds=-3"),
              ("scan_snap", "snap_eta_Y=(0.5,,1)"), ("length_generalization", "steps=99999999999"),
              ("gd_equivalence", "zfb_lam="), ("svm_bias", "path_radii=(1.0,)"), ("rank_growth", "head_rel=0.5"),
              ("scan_snap", "batch=0"), ("length_generalization", "eval_lengths=(5,10")]


@pytest.mark.parametrize("claim, assignment", CLI_SAMPLE)
def test_cli_refuses_with_exit_2_and_writes_nothing(claim, assignment, tmp_path):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", claim, "--out", str(tmp_path / "out"), "--set", assignment])
    lines = err.getvalue().strip().splitlines()
    field = assignment.split("=")[0]
    assert code == 2 and len(lines) == 1 and field in lines[0], (code, lines)
    assert not (tmp_path / "out").exists()
    record("bad input", f"sandbox run {claim} --set {assignment}",
           f"exit {code}, {len(lines)} line naming {field}, no file or folder under --out")


# --- corrupt results files --------------------------------------------------------------------------
VALID = json.loads((REPO / "results" / "gd_equivalence.json").read_text())
VALID_TEXT = (REPO / "results" / "gd_equivalence.json").read_text()
JSON_TYPES = {"str": st.text(max_size=5), "int": st.integers(-3, 3), "float": st.floats(-1, 1),
              "bool": st.booleans(), "none": st.none(), "list": st.lists(st.integers(), max_size=2),
              "dict": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)}
# the JSON type each top-level key must have (a schema v2 result written by theory/harness/runner.py)
KEY_TYPES = {"schema": "int", "claim": "str", "statement": "str", "paper": "str", "preset": "str",
             "precision": "str", "seed": "int", "seeds": "int", "verdict": "str", "checks": "list",
             "config": "dict", "overrides": "list", "versions": "dict", "git": "dict", "wall_seconds": "number",
             "streams": "list", "figure": "str", "data": "dict"}
CHECK_TYPES = {"name": "str", "label": "str", "kind": "str", "op": "str", "metric": "str", "why": "str",
               "part": "str", "passed": "bool", "slack": "number"}


def _wrong(expected: str):
    """A JSON value of another type than `expected`."""
    other = [k for k in JSON_TYPES if not (k == expected or (expected == "number" and k in ("int", "float")))]
    return st.sampled_from(other).flatmap(lambda k: JSON_TYPES[k])


@st.composite
def corrupt_files(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["truncated", "garbage", "non_utf8", "wrong_type", "wrong_check_type",
                                 "missing_keys", "missing_check_keys", "wrong_schema", "bare_nan", "not_object"]))
    r = json.loads(VALID_TEXT)
    if kind == "truncated":
        return kind, VALID_TEXT[:draw(st.integers(0, len(VALID_TEXT.rstrip()) - 1))].encode()
    if kind == "garbage":
        return kind, draw(st.binary(max_size=200))
    if kind == "non_utf8":
        at = draw(st.integers(0, len(VALID_TEXT)))
        return kind, VALID_TEXT[:at].encode() + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80"])) + \
            VALID_TEXT[at:].encode()
    if kind == "wrong_type":
        key = draw(st.sampled_from(sorted(KEY_TYPES)))
        r[key] = draw(_wrong(KEY_TYPES[key]))
    elif kind == "wrong_check_type":
        key = draw(st.sampled_from(sorted(CHECK_TYPES)))
        r["checks"][draw(st.integers(0, len(r["checks"]) - 1))][key] = draw(_wrong(CHECK_TYPES[key]))
    elif kind == "missing_keys":
        for k in draw(st.lists(st.sampled_from(sorted(REQUIRED_KEYS)), min_size=1, max_size=3, unique=True)):
            del r[k]
    elif kind == "missing_check_keys":
        c = r["checks"][draw(st.integers(0, len(r["checks"]) - 1))]
        del c[draw(st.sampled_from(sorted(c)))]
    elif kind == "wrong_schema":
        r["schema"] = draw(st.one_of(st.integers().filter(lambda v: v != 2), st.just("2"), st.just(2.0),
                                     st.none(), st.just(True)))
    elif kind == "bare_nan":
        return kind, VALID_TEXT.replace('"wall_seconds": ', '"wall_seconds": NaN, "x": ', 1).encode()
    elif kind == "not_object":
        return kind, json.dumps(draw(st.one_of(st.lists(st.integers()), st.integers(), st.text()))).encode()
    return kind, json.dumps(r).encode()


@settings(max_examples=150, **SETTINGS)
@given(corrupt_files())
def test_corrupt_result_files_are_refused(case):
    kind, payload = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "gd_equivalence.json"
        path.write_bytes(payload)
        with pytest.raises(SandboxError) as e:
            read_result(path, claim="gd_equivalence")
    message = str(e.value)
    assert str(path) in message and "\n" not in message, (kind, message)
    record("corrupt results", "hypothesis: truncated JSON, garbage bytes, non-UTF-8 bytes, bare NaN, a non-object, "
           "wrong types of top-level and check fields, missing keys, wrong schema",
           "read_result refuses each with one SandboxError line naming the file; never loaded")


def test_the_valid_file_reads():
    """The corruptions start from a file read_result accepts (so each refusal is the corruption's)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "gd_equivalence.json"
        path.write_text(VALID_TEXT)
        assert read_result(path, claim="gd_equivalence")["claim"] == "gd_equivalence"


@pytest.mark.parametrize("kind, payload", [
    ("truncated", VALID_TEXT[:1000].encode()), ("non-UTF-8", b'{"schema": 2, "claim": "\xff"}'),
    ("wrong types", json.dumps({**VALID, "seeds": "three"}).encode()),
    ("missing keys", json.dumps({k: v for k, v in VALID.items() if k != "checks"}).encode()),
])
def test_plot_and_report_exit_2_on_a_corrupt_file(tmp_path, kind, payload):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "gd_equivalence.json").write_bytes(payload)
    for argv in (["plot", "gd_equivalence", "--out", str(tmp_path)], ["report", "--out", str(tmp_path)]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        lines = err.getvalue().strip().splitlines()
        assert code == 2 and len(lines) == 1 and "gd_equivalence.json" in lines[0], (argv, lines)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["gd_equivalence.json"]
    record("corrupt results", f"sandbox plot and sandbox report on a {kind} results file",
           "exit 2, one line naming the file, nothing written")
