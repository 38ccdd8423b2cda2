"""Shared assertions for the claim tests.

`assert_checks_pass`   a fresh quick-preset result has exactly the expected checks, each passing.
`wrong_measurement`    re-judges one part of a committed result with a perturbed measurement (what
                       a wrong model would produce) and asserts that the named checks fail: the
                       evidence that a check can fail at all. No training: the judge is pure.
`assert_covered`       every evidence check of a committed result (kind != "sanity") is made to fail
                       by at least one of a claim's wrong measurements.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Callable, Iterable

from theory.harness import config as config_lib
from theory.harness import registry
from theory.harness.parts import judge_part
from theory.harness.runner import output_paths


def assert_checks_pass(result: dict, expected: list[str]) -> dict:
    """Assert the result's checks are `expected` (in order) and every one passed; return them by name."""
    checks = {c["name"]: c for c in result["checks"]}
    assert list(checks) == expected
    for name in expected:
        assert checks[name]["passed"], (name, checks[name])
    assert result["verdict"] == "pass"
    return checks


def committed(claim: str, preset: str = "quick") -> dict:
    """The committed result file of `claim` (results/<claim>.json or results/<preset>/<claim>.json)."""
    return json.loads(Path(output_paths(claim, None, preset)[0]).read_text())


def rejudge(claim: str, result: dict, part: str, measured: dict | None = None) -> dict:
    """{check name: check dict} of part `part` judged again, on `measured` if given."""
    module = registry.load(claim)
    cfg = config_lib.from_dict(module.Config, result["config"])
    data = copy.deepcopy(result["data"])
    if measured is not None:
        data[part]["measured"] = measured
    return {c.name: c for c in judge_part(module.PARTS, part, cfg, data)}


def wrong_measurement(claim: str, part: str, perturb: Callable[[dict, dict], dict],
                      must_fail: Iterable[str], result: dict | None = None) -> None:
    """Judge `part` on perturb(P, copy of M) and assert every check in `must_fail` fails."""
    result = committed(claim) if result is None else result
    P = copy.deepcopy(result["data"][part]["predicted"])
    M = perturb(P, copy.deepcopy(result["data"][part]["measured"]))
    assert M is not None, "perturb must return the perturbed measurement"
    checks = rejudge(claim, result, part, M)
    missing = set(must_fail) - set(checks)
    assert not missing, f"{part} has no checks {sorted(missing)}; it has {sorted(checks)}"
    still = [n for n in must_fail if checks[n].passed]
    assert not still, f"checks {still} still pass on a wrong measurement"


def assert_covered(claim: str, wrong: Iterable[tuple], result: dict | None = None) -> None:
    """Each evidence check of the committed result appears in some entry's must_fail set.

    `wrong` holds tuples (part, description, perturb, must_fail)."""
    result = committed(claim) if result is None else result
    covered = set().union(*(set(w[3]) for w in wrong))
    evidence = {c["name"] for c in result["checks"] if c["kind"] != "sanity"}
    assert not evidence - covered, f"no wrong measurement fails {sorted(evidence - covered)}"


def judge_tests(claim: str, wrong: list[tuple]):
    """The two judge tests of a claim's test module, from its `WRONG` list:

        test_wrong_measurement_fails, test_every_evidence_check_can_fail = judge_tests(CLAIM, WRONG)
    """
    import pytest

    @pytest.mark.parametrize("part, description, perturb, must_fail", wrong, ids=[w[1] for w in wrong])
    def test_wrong_measurement_fails(part, description, perturb, must_fail):
        wrong_measurement(claim, part, perturb, must_fail)

    def test_every_evidence_check_can_fail():
        assert_covered(claim, wrong)

    return test_wrong_measurement_fails, test_every_evidence_check_can_fail
