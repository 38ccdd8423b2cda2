"""The reliability table: what the tests tried against the sandbox, and what happened.

    from reliability import record
    record("bad input", "--set lr=nan on every claim", f"exit {code}, one line naming lr, nothing written")

`record` attaches a row to the test that is running (pytest's PYTEST_CURRENT_TEST). Build the
outcome from what the test observed (exit codes, line counts, files found), not from what it
expects. At the end of the session, tests/conftest.py merges the rows of the tests that ran into
`results/reliability.json` (rows of tests that did not run this session are kept; rows of a test
that failed are written with outcome "FAILED: ..."), sorted, so the file is the same for the same
outcomes. `sandbox report` renders it into the README between `<!-- reliability:start -->` and
`<!-- reliability:end -->` (theory/harness/report.py, `reliability`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

PATH = Path(__file__).resolve().parent.parent / "results" / "reliability.json"
ROWS: dict[str, list[dict]] = {}      # test node id -> its rows (this session)
OUTCOMES: dict[str, str] = {}         # test node id -> "passed" | "failed" | "skipped" (this session)


def _current_test() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST")
    if not current:
        raise RuntimeError("reliability.record is called from a running test only")
    return current.rsplit(" ", 1)[0]          # "tests/test_cli.py::test_x (call)" -> the node id


def record(area: str, tried: str, outcome: str) -> None:
    """One row of the table: in `area`, `tried` was done and `outcome` is what happened."""
    row = {"area": area, "tried": tried, "outcome": outcome}
    rows = ROWS.setdefault(_current_test(), [])
    if row not in rows:
        rows.append(row)


def merged_rows(existing: list[dict]) -> list[dict]:
    """The table after this session: earlier rows of tests that did not run, plus this session's."""
    ran = set(OUTCOMES)
    rows = [r for r in existing if r.get("test") not in ran]
    for test, test_rows in ROWS.items():
        status = OUTCOMES.get(test, "passed")
        for r in test_rows:
            outcome = r["outcome"] if status == "passed" else f"FAILED ({status}): expected {r['outcome']}"
            rows.append({**r, "outcome": outcome, "test": test})
    unique = {(r["area"], r["tried"], r["test"]): r for r in rows}
    return [unique[k] for k in sorted(unique)]


def write(path: Path = PATH) -> bool:
    """Merge this session's rows into `path`; True if the file changed. Nothing happens without rows."""
    if not ROWS:
        return False
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        existing = []
    text = json.dumps({"rows": merged_rows(existing)}, indent=1, sort_keys=True) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True
