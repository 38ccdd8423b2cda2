"""Reports built from result files alone: the README summary blocks and REPORT.md.

    summary(root, preset)   one Markdown row per claim: verdict, evidence and sanity checks passed,
                            preset, seeds, wall time, figure (the README's generated blocks)
    full_report(root)       REPORT.md: per preset, per claim its statement, paper, provenance, figure
                            inline and the checks table (label, kind, predicted / bound, measured,
                            slack, why), then any claim-specific table (`report_markdown(result)`)
    write(root)             writes REPORT.md and replaces the README blocks under `root`

Presets: the quick results must exist for every registered claim; a full-preset section lists the
claims that have a full result (none: the section says so).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from theory.errors import SandboxError
from theory.harness import registry
from theory.harness.results import read_result
from theory.harness.runner import PRESETS, REPO, available, output_paths

KIND_ORDER = ("exact", "predicted", "expected", "sanity")


def fmt(x) -> str:
    """A number or value as the report prints it (4 significant digits, e-notation when far from 1)."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        x = float(x)
        if x == 0:
            return "0"
        if abs(x) >= 1e4 or abs(x) < 1e-3:
            return f"{x:.2e}"
        return f"{x:.4g}"
    if isinstance(x, list):
        return "[" + ", ".join(fmt(v) for v in x[:6]) + (", …" if len(x) > 6 else "") + "]"
    return str(x)


def theory_column(c: dict) -> str:
    """What the check compares against: '== p (rel tol t)', '<= b', '>= b' or the statement."""
    if c["op"] == "==":
        return f"{fmt(c['predicted'])} ± {fmt(c['tolerance'])}{' rel' if c['metric'] == 'rel' else ''}"
    if c["op"] in ("<=", ">="):
        return f"{c['op']} {fmt(c['bound'])}"
    return str(c["predicted"])


def counts(result: dict) -> tuple[int, int, int, int]:
    """(evidence passed, evidence total, sanity passed, sanity total)."""
    ev = [c for c in result["checks"] if c["kind"] != "sanity"]
    sa = [c for c in result["checks"] if c["kind"] == "sanity"]
    return (sum(c["passed"] for c in ev), len(ev), sum(c["passed"] for c in sa), len(sa))


def _results(root: Path | None, preset: str, required: bool) -> dict[str, dict]:
    names = registry.names() if required else available(root, preset)
    return {n: read_result(output_paths(n, root, preset)[0]) for n in names}


def _esc(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary(root: Path | None = None, preset: str = "quick") -> str:
    """The README block of `preset`: one row per claim, read from the result files."""
    results = _results(root, preset, required=preset == "quick")
    if not results:
        return f"No {preset}-preset results yet (`sandbox run <claim> --{preset}`).\n"
    rows = ["| claim | paper | verdict | evidence checks | sanity checks | seeds | wall (s) | figure |",
            "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ep, et, sp, st = counts(r)
        rows.append(f"| [`{name}`](REPORT.md#{_anchor(name, preset)}) | {r.get('paper', '')} | "
                    f"**{r['verdict']}** | {ep}/{et} | {sp}/{st} | {r['seeds']} | "
                    f"{float(r['wall_seconds']):.0f} | [{Path(r['figure']).name}]({r['figure']}) |")
    total = sum(float(r["wall_seconds"]) for r in results.values())
    return ("\n".join(rows) + f"\n\nTotal measured wall time of these {preset}-preset runs: "
            f"{total / 60:.1f} min (each row's checks, with predicted values, tolerances and reasons, "
            "are in [REPORT.md](REPORT.md)).\n")


def _anchor(name: str, preset: str) -> str:
    return f"{name}-{preset}"


def claim_section(r: dict, module=None) -> str:
    """One claim's REPORT.md section."""
    name, preset = r["claim"], r["preset"]
    ep, et, sp, st = counts(r)
    git = r.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    out = [f'<a id="{_anchor(name, preset)}"></a>',
           f"### `{name}` ({preset}): {r['verdict'].upper()}, evidence {ep}/{et}, sanity {sp}/{st}",
           "", f"{r.get('statement', '')}", "",
           f"Paper: {r.get('paper', '')}. Seed {r['seed']}, {r['seeds']} seed(s), "
           f"{float(r['wall_seconds']):.0f} s, precision {r.get('precision', '')}, commit {commit}"
           + (f", overrides {r['overrides']}" if r.get("overrides") else "") + ".", "",
           f"![{name}]({r['figure']})", "",
           "| part | check | kind | theory | measured | slack | pass | why |",
           "|---|---|---|---|---|---|---|---|"]
    for c in r["checks"]:
        out.append(f"| {c.get('part', '')} | {_esc(c['label'])} <br>`{c['name']}` | {c['kind']} | "
                   f"{_esc(theory_column(c))} | {_esc(fmt(c['measured']))} | {fmt(c['slack'])} | "
                   f"{'yes' if c['passed'] else '**no**'} | {_esc(c['why'])} |")
    extra = getattr(module, "report_markdown", None) if module is not None else None
    if extra is not None and (md := extra(r)):
        out += ["", md.rstrip()]
    return "\n".join(out) + "\n"


def full_report(root: Path | None = None) -> str:
    """REPORT.md: every preset's results, one section per claim."""
    parts = ["# Claims report", "",
             "Generated from the result files by `sandbox report`; do not edit. Kinds: `exact` "
             "(an identity, to rounding), `predicted` (theory from the config alone, within a stated "
             "tolerance), `expected` (a threshold from reference runs or a paper's figure), `sanity` "
             "(true by construction; a bug detector, not evidence). Slack is the distance to failing: "
             "tolerance - error for `==`, bound - measured for `<=`, measured - bound for `>=`; "
             "negative means the check failed.", ""]
    for preset in PRESETS:
        results = _results(root, preset, required=preset == "quick")
        parts += [f"## {preset} preset", ""]
        if not results:
            parts += [f"No {preset}-preset results yet: `sandbox run <claim> --{preset}`.", ""]
            continue
        for name, r in results.items():
            parts.append(claim_section(r, registry.load(name)))
    return "\n".join(parts).rstrip() + "\n"


# --- README blocks -----------------------------------------------------------------------------
def markers(preset: str) -> tuple[str, str]:
    """The README comment lines that delimit the generated block of `preset`."""
    return (f"<!-- {preset}-summary:start (generated by `sandbox report`; do not edit) -->",
            f"<!-- {preset}-summary:end -->")


def replace_block(text: str, preset: str, block: str) -> str:
    start, end = markers(preset)
    if start not in text or end not in text:
        raise SandboxError(f"README has no {preset}-preset summary markers ({start})")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + "\n" + block + end + tail


def readme_block(text: str, preset: str) -> str:
    """The generated block of `preset` in README text (for the staleness test)."""
    start, end = markers(preset)
    return text.split(start, 1)[1].split(end, 1)[0].lstrip("\n")


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(root: Path | None = None) -> list[Path]:
    """Write `root`/REPORT.md and update the summary blocks of `root`/README.md (when it exists).

    Everything is rendered before anything is written, so a missing result writes nothing."""
    root = Path(root) if root is not None else REPO
    report_md = full_report(root)
    readme = root / "README.md"
    new_readme = None
    if readme.is_file():
        new_readme = readme.read_text()
        for preset in PRESETS:
            new_readme = replace_block(new_readme, preset, summary(root, preset))
    root.mkdir(parents=True, exist_ok=True)
    _write_text(root / "REPORT.md", report_md)
    written = [root / "REPORT.md"]
    if new_readme is not None:
        _write_text(readme, new_readme)
        written.append(readme)
    return written
