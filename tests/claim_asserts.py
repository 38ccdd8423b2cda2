"""Shared assertions for the claim tests: the check names are exactly the expected ones, each passes."""


def assert_checks_pass(result: dict, expected: list[str]) -> dict:
    """Assert the result's checks are `expected` (in order) and every one passed; return them by name."""
    checks = {c["name"]: c for c in result["checks"]}
    assert list(checks) == expected
    for name in expected:
        assert checks[name]["passed"], (name, checks[name])
    assert result["verdict"] == "pass"
    return checks
