"""Reports built from result files alone: the README summary blocks and REPORT.md.

    summary(root, preset)   one Markdown row per claim: verdict, evidence and sanity checks passed,
                            preset, seeds, wall time, figure (the README's generated blocks)
    full_report(root)       REPORT.md: per preset, per claim its statement, paper, provenance, figure
                            inline and the checks table (label, kind, predicted / bound, measured,
                            slack, why), then any claim-specific table (`report_markdown(result)`);
                            with custom=True also every custom run under root (its base preset, the
                            fields it changed and the checks it skipped)
    reliability(root)       the README's reliability table, from root/results/reliability.json
                            (written by the test session, tests/reliability.py)
    write(root, readme)     writes REPORT.md and replaces the README blocks of root/README.md

The README written is always the one of the root the results are read from (`root/README.md`):
asking for another one (`--readme PATH`) is refused rather than filling one checkout's README with
another directory's numbers.

Presets: the quick results must exist for every registered claim; a full-preset section lists the
claims that have a full result (none: the section says so).
"""
from __future__ import annotations

import json
from pathlib import Path

from theory.errors import SandboxError
from theory.harness import registry
from theory.harness.results import read_result, write_text_atomic
from theory.harness.runner import PRESETS, REPO, available, custom_results, output_paths

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
    return {n: read_result(output_paths(n, root, preset)[0], claim=n) for n in names}


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
    recs = _reproduce_records(Path(root) if root is not None else REPO) if preset == "quick" else {}
    together = [j for j, rec in recs.items() if j > 1 and all(rec["claims"].get(n) == r["wall_seconds"]
                                                              for n, r in results.items())]
    when = (f"These runs shared the cores, {together[0]} claims at a time, in one `sandbox reproduce --jobs "
            f"{together[0]}` of {recs[together[0]]['seconds'] / 60:.1f} min; their walls add up to "
            f"{total / 60:.1f} min (each claim alone: the timings table)." if together else
            f"Total measured wall time of these {preset}-preset runs: {total / 60:.1f} min.")
    return ("\n".join(rows) + f"\n\n{when} Each row's checks, with predicted values, tolerances and reasons, "
            "are in [REPORT.md](REPORT.md).\n")


def _anchor(name: str, preset: str) -> str:
    return f"{name}-{preset}"


def _value(v) -> str:
    """A config value as typed on the command line: 10, 0.001, true, (0.5, 1)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "(" + ", ".join(_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def changed_text(r: dict) -> str:
    """'d: 10 -> 6, steps: 2000 -> 100' (the fields a custom run changed), or 'none'."""
    return ", ".join(f"{k}: {_value(a)} -> {_value(b)}" for k, (a, b) in (r.get("changed") or {}).items()) or "none"


def skipped_text(r: dict) -> str:
    """'sincos_at_100, randomized_at_100, all of part fig6' (the checks a custom run skipped), or 'none'."""
    items = [s["name"] or f"all of part {s['part']}" for s in r.get("skipped") or []]
    return ", ".join(items) or "none"


def custom_line(r: dict) -> str:
    """One line: what a custom run is relative to its base preset."""
    n = len(r.get("skipped") or [])
    return (f"Custom run from the {r.get('base_preset', 'quick')} preset: changed {changed_text(r)}; "
            f"skipped {n} check{'s' if n != 1 else ''} of that preset: {skipped_text(r)}.")


def part_times(r: dict) -> str:
    """The wall time of each part that ran (a part restored from a checkpoint keeps its own time)."""
    times = r["part_seconds"]
    return "Time per part: " + ", ".join(f"{p} {float(t):.0f} s" for p, t in times.items()) + "."


def claim_section(r: dict, module=None) -> str:
    """One claim's REPORT.md section."""
    name, preset = r["claim"], r["preset"]
    ep, et, sp, st = counts(r)
    git = r.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    anchor = Path(r["figure"]).stem if preset == "custom" else _anchor(name, preset)   # custom: <claim>-<hash>
    out = [f'<a id="{anchor}"></a>',
           f"### `{name}` ({preset}): {r['verdict'].upper()}, evidence {ep}/{et}, sanity {sp}/{st}",
           "", f"{r.get('statement', '')}", "",
           f"Paper: {r.get('paper', '')}. Seed {r['seed']}, {r['seeds']} seed(s), "
           f"{float(r['wall_seconds']):.0f} s, precision {r.get('precision', '')}, commit {commit}"
           + (f", overrides {r['overrides']}" if r.get("overrides") else "") + ".", "",
           *([part_times(r), ""] if r.get("part_seconds") else []),
           *([custom_line(r), ""] if preset == "custom" else []),
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


def full_report(root: Path | None = None, custom: bool = False) -> str:
    """REPORT.md: every preset's results, one section per claim (and the custom runs, if asked)."""
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
    if custom:
        parts += ["## custom runs", ""]
        runs = [read_result(p) for p in custom_results(root)]
        if not runs:
            parts += ["No custom runs (`sandbox run <claim> --set FIELD=VALUE`).", ""]
        for r in runs:
            module = registry.load(r["claim"]) if r["claim"] in registry.CLAIMS else None
            parts.append(claim_section(r, module))
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


RELIABILITY = ("<!-- reliability:start -->", "<!-- reliability:end -->")


def reliability_path(root: Path | None = None) -> Path:
    return (Path(root) if root is not None else REPO) / "results" / "reliability.json"


def reliability(root: Path | None = None) -> str:
    """The README's reliability table (what was tried, what happened) from results/reliability.json."""
    path = reliability_path(root)
    if not path.is_file():
        return ("No reliability table yet: `pytest tests/test_cli.py tests/test_fuzz.py` writes "
                "results/reliability.json.\n")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
        lines = [f"| {_esc(r['area'])} | {_esc(r['tried'])} | {_esc(r['outcome'])} |" for r in rows]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise SandboxError(f"{path} is not a reliability table ({type(e).__name__})") from None
    return ("Produced by the test session (`tests/reliability.py`); each row is a test that passed "
            "(a failing one shows as FAILED).\n\n"
            "| area | what was tried | what happened |\n|---|---|---|\n" + "\n".join(lines) + "\n")


TIMINGS = ("<!-- timings:start -->", "<!-- timings:end -->")


REPRODUCE_TIMES = "reproduce_times.json"


def record_reproduce(root: Path | None, preset: str, jobs: int, seconds: float, walls: dict[str, float]) -> None:
    """Write results/reproduce_times.json[preset][jobs]: the wall time of a `sandbox reproduce` that
    ran every claim (none skipped as up to date), the cores and date, and each claim's wall time in
    that run. One record per --jobs value, so one claim at a time and N at a time sit side by side."""
    import datetime

    from theory.engine.sweep import usable_cores
    base = Path(root) if root is not None else REPO
    path = base / "results" / REPRODUCE_TIMES
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        old = old if isinstance(old, dict) else {}
    except (OSError, UnicodeDecodeError, ValueError):
        old = {}
    old.setdefault(preset, {})[str(jobs)] = {"seconds": round(seconds, 1), "cpus": usable_cores(),
                                             "date": datetime.date.today().isoformat(), "claims": walls}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(old, indent=1, sort_keys=True) + "\n")


def _reproduce_records(base: Path) -> dict[int, dict]:
    """{jobs: record} of the quick preset from results/reproduce_times.json ({} if none)."""
    try:
        recs = json.loads((base / "results" / REPRODUCE_TIMES).read_text(encoding="utf-8"))["quick"]
        return {int(j): r for j, r in recs.items() if isinstance(r.get("claims"), dict)}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def timings(root: Path | None = None) -> str:
    """The README's measured runtimes: test tiers (results/test_times.json, written by a test
    session that ran a whole tier and passed, tests/conftest.py); each quick preset on its own (from
    the last whole `sandbox reproduce` that ran one claim at a time, else from its result file when
    no `--jobs N > 1` run wrote it: a claim sharing the cores is slower than alone); and the last
    whole `sandbox reproduce` for each --jobs (results/reproduce_times.json)."""
    base = Path(root) if root is not None else REPO
    recs = _reproduce_records(base)
    lines = ["| what | tests | wall time | cores | measured |", "|---|---|---|---|---|"]
    try:
        times = json.loads((base / "results" / "test_times.json").read_text(encoding="utf-8"))
        for tier, t in sorted(times.items()):
            cores = f"{t['cpus']} ({t['workers']} pytest workers)" if t.get("workers", 1) > 1 else f"{t['cpus']}"
            cache = f", {t['compile_cache']} compile cache" if t.get("compile_cache") in ("cold", "warm") else ""
            lines.append(f"| {tier} | {t['tests']} | {t['seconds'] / 60:.1f} min | {cores}{cache} | {t['date']} |")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        pass
    alone = recs.get(1, {}).get("claims", {})
    shared = {n: w for j, r in recs.items() if j > 1 for n, w in r["claims"].items()}
    for name in registry.names():
        if name in alone:
            r1 = recs[1]
            lines.append(f"| `sandbox run {name}` (quick) | | {alone[name]:.0f} s | {r1['cpus']} | {r1['date']} |")
            continue
        try:
            r = read_result(base / "results" / f"{name}.json", claim=name)
        except SandboxError:
            continue
        if shared.get(name) != r["wall_seconds"]:
            lines.append(f"| `sandbox run {name}` (quick) | | {r['wall_seconds']:.0f} s | | |")
    for jobs, r in sorted(recs.items()):
        how = "one claim at a time" if jobs == 1 else f"{jobs} claims at a time, each in its own process"
        lines.append(f"| `sandbox reproduce{f' --jobs {jobs}' if jobs > 1 else ''}` (every claim, quick; {how}) "
                     f"| | {r['seconds'] / 60:.1f} min | {r['cpus']} | {r['date']} |")
    return "\n".join(lines) + "\n"


BENCH = ("<!-- bench:start -->", "<!-- bench:end -->")


def bench(root: Path | None = None) -> str:
    """The README's bench table, rendered from results/bench.json (written by `sandbox bench`)."""
    path = (Path(root) if root is not None else REPO) / "results" / "bench.json"
    if not path.is_file():
        return "No bench results yet: `sandbox bench` writes results/bench.json.\n"
    from theory.bench import render
    try:
        return "```\n" + render(json.loads(path.read_text(encoding="utf-8"))).rstrip("\n") + "\n```\n"
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise SandboxError(f"{path} is not a bench result ({type(e).__name__})") from None


EXPLORE = ("<!-- explore-examples:start -->", "<!-- explore-examples:end -->")


def explore_examples(root: Path | None = None) -> str:
    """The README's explore table, one row per results/explore/*.json (written by `sandbox explore`):
    the grid, seeds, wall time, where "all checks" first fails along each field, how many checks
    never failed, and the figure."""
    from theory.harness import explore
    base = Path(root) if root is not None else REPO
    files = sorted((base / "results" / "explore").glob("*.json"))
    if not files:
        return "No explore results yet: `sandbox explore NAME` writes results/explore/.\n"
    lines = ["| claim (part) | grid | seeds | wall | all checks first fail at | never failed | figure |",
             "|---|---|---|---|---|---|---|"]
    for path in files:
        r = explore.read(path)
        grid = " x ".join(f"`{f}` ({len(r['grid'][f])})" for f in r["fields"])
        bounds = explore.boundaries(r)["all checks"]
        first = "; ".join(
            f"{f}: " + ", ".join("none" if e["first_fail"] is None else explore.value_text(e["first_fail"])
                                 for e in bounds[f]) for f in r["fields"])
        names = explore.check_names(r)
        part = f" ({r['part']})" if r.get("part") else ""
        fig = f"figures/explore/{path.stem}.png"
        lines.append(f"| `{r['claim']}`{part} | {grid} | {r['seeds']} | {r['wall_seconds'] / 60:.1f} min | {first} | "
                     f"{len(explore.never_failed(r))}/{len(names)} | [{path.stem}.png]({fig}) |")
    return "\n".join(lines) + "\n"


def replace_marked(text: str, start: str, end: str, block: str) -> str:
    """`text` with the lines between the markers `start` and `end` replaced by `block`."""
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + "\n" + block + end + tail


def reliability_block(text: str) -> str | None:
    """The reliability block in README text (None when the markers are absent)."""
    start, end = RELIABILITY
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].lstrip("\n")


def readme_text(root: Path | None, text: str) -> str:
    """README text with every generated block (preset summaries, reliability table) regenerated."""
    for preset in PRESETS:
        text = replace_block(text, preset, summary(root, preset))
    if reliability_block(text) is not None:
        text = replace_marked(text, *RELIABILITY, reliability(root))
    if TIMINGS[0] in text and TIMINGS[1] in text:
        text = replace_marked(text, *TIMINGS, timings(root))
    if BENCH[0] in text and BENCH[1] in text:
        text = replace_marked(text, *BENCH, bench(root))
    if EXPLORE[0] in text and EXPLORE[1] in text:
        text = replace_marked(text, *EXPLORE, explore_examples(root))
    return text


def write(root: Path | None = None, readme: Path | None = None, custom: bool = False) -> list[Path]:
    """Write `root`/REPORT.md and update the generated blocks of `root`/README.md (when it exists).

    `readme` (the CLI's --readme) must be `root`/README.md: a README is only ever given the numbers of
    its own root, so any other path is refused. Everything is rendered before anything is written,
    so a missing result writes nothing."""
    root = Path(root) if root is not None else REPO
    own = root / "README.md"
    if readme is not None:
        if Path(readme).resolve() != own.resolve():
            raise SandboxError(f"--readme {readme} is not the README of the results root {root} "
                               f"({own}); refusing to write another directory's numbers into it")
        if not own.is_file():
            raise SandboxError(f"--readme {readme}: no such file (copy a README with the summary markers there)")
    report_md = full_report(root, custom=custom)
    new_readme = readme_text(root, own.read_text(encoding="utf-8")) if own.is_file() else None
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / "REPORT.md", report_md)
    written = [root / "REPORT.md"]
    if new_readme is not None:
        write_text_atomic(own, new_readme)
        written.append(own)
    return written
