"""`sandbox`: list, run, explore, reproduce, report, plot and bench the registered claims.

Exit codes:
    0    every check passed (a plain pass)
    1    a check failed, or a custom run skipped checks of its base preset (verdict "partial")
    2    bad input or a diverged run: unknown claim or field, a malformed, non-finite, out-of-range or
         tolerance --set, a config too large for this machine's memory, an unwritable output, a
         missing or corrupt results file, a training run or measurement that diverged (one line on
         stderr, nothing written)
    3    an internal error (a bug): one line naming the exception; `sandbox --debug ...` prints
         the traceback
    130  interrupted by Ctrl-C (SIGINT), 143 by SIGTERM: training stops at the next segment boundary
         (a few seconds), the checkpoint is kept, and the same command resumes the run
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from theory.errors import SandboxError

EXIT_CODES = __doc__.split("Exit codes:", 1)[1].rstrip()


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"sandbox: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sandbox", description=__doc__.splitlines()[0],
                epilog="exit codes:" + EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="print the traceback of an internal error")
    debug = _Parser(add_help=False)          # --debug is also accepted after the subcommand
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    sub.add_parser("list", help="names, statements and papers of all claims", parents=[debug])

    def preset_flags(q):
        g = q.add_mutually_exclusive_group()
        g.add_argument("--quick", dest="preset", action="store_const", const="quick",
                       help="the test-sized preset (default)")
        g.add_argument("--full", dest="preset", action="store_const", const="full",
                       help="the publication preset used for the figures")
        q.set_defaults(preset="quick")
        q.add_argument("--out", type=Path, default=None,
                       help="write DIR/results and DIR/figures instead of the repository's")

    r = sub.add_parser("run", help="run one claim: train, predict, compare, write result and figure",
                       parents=[debug], formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run one claim. Any --set, a --seeds other than the preset's or a --seed\n"
                       "other than 0 is a custom run: written to results/custom/<claim>-<hash>.json and\n"
                       "figures/custom/, never over the preset's files; checks of the preset it does not\n"
                       "produce are reported as skipped (verdict partial). Tolerances are not settable.",
                       epilog="exit codes:" + EXIT_CODES)
    r.add_argument("name")
    preset_flags(r)
    r.add_argument("--seed", type=int, default=0, help="base seed in [0, 2^31) (named streams, theory/engine/keys.py)")
    r.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a config field, once per field (repeatable for different fields)")

    rp = sub.add_parser("reproduce", help="run every claim, then write the claims table", parents=[debug])
    preset_flags(rp)
    rp.add_argument("--force", action="store_true",
                    help="rerun claims whose result is up to date with the code and preset (skipped otherwise)")
    rp.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="run N claims at once, each in its own process, longest first (default 1: one "
                         "after another in this process); a claim's numbers do not depend on N")

    rep = sub.add_parser("report", help="write REPORT.md and the README summary blocks from the results files",
                         parents=[debug])
    rep.add_argument("--out", type=Path, default=None,
                     help="read DIR/results and write DIR/REPORT.md (and DIR/README.md if present)")
    rep.add_argument("--readme", type=Path, default=None,
                     help="the README to update; must be the results root's own README.md (refused otherwise)")
    rep.add_argument("--custom", action="store_true", help="add the custom runs under results/custom/ to REPORT.md")

    pl = sub.add_parser("plot", help="redraw figures from results files without training", parents=[debug])
    pl.add_argument("names", nargs="*")
    preset_flags(pl)

    ex = sub.add_parser("explore", help="map where a claim's checks hold over a grid of config values",
                        parents=[debug], formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Run a claim (or one part) over one or two config fields and map each check:\n"
                        "results/explore/<claim>-<hash>.json, figures/explore/<claim>-<hash>.png|svg, and a\n"
                        "table of the first failing value along each field. Values are parsed as --set\n"
                        "values; every grid point is validated before anything trains. Without --grid the\n"
                        "claim's main knob is mapped (--list NAME shows its knobs). Resumable: the same\n"
                        "command continues an interrupted explore. --jobs N runs the grid in N worker\n"
                        "processes (the same numbers; on a 2-core machine --jobs 2 uses both cores). Exit 0\n"
                        "when the map is written (the map itself says where checks fail).",
                        epilog="exit codes:" + EXIT_CODES)
    ex.add_argument("name", nargs="?")
    ex.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                    help="a field and its values (commas outside brackets separate values); at most twice")
    ex.add_argument("--seeds", type=int, default=1, help="base seeds 0..K-1 per grid point (default 1)")
    ex.add_argument("--part", default=None, help="run only this part of the claim")
    ex.add_argument("--list", action="store_true", help="show the claim's knobs and default grids")
    ex.add_argument("--from", dest="from_file", type=Path, default=None,
                    help="redraw the figure and print the table of an explore result file (no training)")
    ex.add_argument("--full", dest="preset", action="store_const", const="full", default="quick",
                    help="explore around the full preset (default: quick)")
    ex.add_argument("--out", type=Path, default=None, help="write DIR/results and DIR/figures")
    ex.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="run the (point, seed) pairs in N worker processes (default 1: in this one); the "
                         "same numbers")
    ex.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)

    b = sub.add_parser("bench", help="speed ratios measured in one run on this machine", parents=[debug])
    b.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    b.add_argument("names", nargs="*", metavar="NAME",
                   help="measure only these claims' rows (or `explore`: the explore --jobs row) and merge them "
                        "into results/bench.json")
    return p


def _print_checks(result: dict) -> None:
    from theory.harness.report import changed_text, counts, fmt, skipped_text, theory_column
    rows = [("check", "kind", "theory", "measured", "slack", "pass")]
    for c in result["checks"]:
        rows.append((c["name"], c["kind"], theory_column(c), fmt(c["measured"]), fmt(c["slack"]),
                     "PASS" if c["passed"] else "FAIL"))
    for s in result.get("skipped", []):
        rows.append((s["name"] or f"({s['part']}: all)", "", "", "", "", "SKIPPED"))
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(x[:60].ljust(w) for x, w in zip(r, widths)))
    ep, et, sp, st = counts(result)
    n_skip = len(result.get("skipped", []))
    preset = (f"custom from {result.get('base_preset')}" if result["preset"] == "custom" else result["preset"])
    print(f"{result['claim']}: {result['verdict'].upper()} (evidence {ep}/{et}, sanity {sp}/{st}"
          f"{f', {n_skip} skipped' if n_skip else ''}; {preset}, {result['wall_seconds']:.1f} s)")
    if result["preset"] == "custom":
        stem = Path(result["figure"]).stem
        print(f"  changed: {changed_text(result)}")
        print(f"  skipped: {skipped_text(result)}")
        print(f"  written: results/custom/{stem}.json, figures/custom/{stem}.png|svg")


def main(argv: list[str] | None = None) -> int:
    from theory.engine import interrupt
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        with interrupt.interruptible():
            return _dispatch(args)
    except interrupt.Interrupted as e:          # honoured at a training segment or part boundary
        print(f"sandbox: {e}; resume with: sandbox {shlex.join(argv)}", file=sys.stderr, flush=True)
        return e.exit_code
    except SandboxError as e:                   # bad input, a diverged run (DivergenceError)
        if debug:
            traceback.print_exc()
        print(f"sandbox: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sandbox: interrupted; no result or figure was written for the unfinished claim",
              file=sys.stderr)
        return 130
    except Exception as e:                      # a bug: one line, the traceback only with --debug
        if debug:
            traceback.print_exc()
        print(f"sandbox: internal error: {type(e).__name__}: {_one_line(e)} (rerun with --debug for the "
              "traceback)", file=sys.stderr)
        return 3


def entry(argv: list[str] | None = None) -> None:
    """The console script: `main`, then exit. After an interrupt the process leaves through
    `os._exit` (streams flushed first), skipping the interpreter shutdown in which JAX's runtime
    can crash (theory/engine/interrupt.py)."""
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if code >= 128:
        os._exit(code)
    sys.exit(code)


def _reproduce_in_children(todo: list[str], args, results: dict) -> None:
    """`reproduce --jobs N`: the claims in `todo` as child `sandbox run`s (theory/harness/jobs.py),
    their results read back into `results`. A child that exits with a bad-input or internal-error
    code makes the whole command fail with that code, after the others have finished."""
    import json

    from theory.harness import jobs, runner
    from theory.harness.results import read_result

    def last_seconds(name):
        try:
            return float(json.loads(runner.output_paths(name, args.out, args.preset)[0].read_text())["wall_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    order = jobs.longest_first(todo, {n: last_seconds(n) for n in todo})
    print(f"== {', '.join(order)} ({args.preset}): {min(args.jobs, len(order))} at a time, each in its "
          "own process", flush=True)
    began = time.time()
    codes = jobs.run_all(order, args.jobs, lambda n: jobs.run_argv(n, args.preset, args.out))

    def written(name):                   # a result file this run wrote (not one left from before)
        path = runner.output_paths(name, args.out, args.preset)[0]
        return path.is_file() and path.stat().st_mtime >= began - 1.0
    bad = {n: c for n, c in codes.items() if c not in (0, 1) or not written(n)}
    if bad:
        raise SandboxError("claims that did not finish: " + ", ".join(f"{n} (exit {c})" for n, c in bad.items())
                           + "; their lines above say why")
    for name in order:
        results[name] = read_result(runner.output_paths(name, args.out, args.preset)[0], claim=name)
        _print_checks(results[name])


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _dispatch(args) -> int:
    if args.cmd == "bench":   # before anything imports JAX: the bench sets the host device count
        from theory import bench
        bench.main(quick=args.quick, names=args.names or None)
        return 0
    from theory.engine.cache import enable_persistent_cache
    from theory.harness import registry as claims
    from theory.harness import report, runner
    enable_persistent_cache()            # theory/engine/cache.py (SANDBOX_NO_COMPILE_CACHE=1: off)
    if args.cmd == "list":
        for spec in claims.CLAIMS.values():
            print(f"{spec.name}\n    {spec.statement}\n    paper: {spec.paper}")
        return 0
    if args.cmd == "run":
        result = runner.run_claim(args.name, args.preset, seed=args.seed, seeds=args.seeds,
                                  overrides=args.overrides, out=args.out, progress=True)
        _print_checks(result)
        return 0 if result["verdict"] == "pass" else 1
    if args.cmd == "reproduce":
        from theory.harness import jobs
        start = time.perf_counter()
        jobs.check_jobs(args.jobs)
        results, ran = {}, []
        for name in claims.names():
            current = None if args.force else runner.up_to_date(name, args.preset, args.out)
            if current is not None:
                print(f"== {name} ({args.preset}): up to date with the code and preset, not rerun "
                      f"(--force reruns it): {current['verdict'].upper()}", flush=True)
                results[name] = current
            elif args.jobs == 1:
                ran.append(name)
                print(f"== {name} ({args.preset})", flush=True)
                results[name] = runner.run_claim(name, args.preset, out=args.out, progress=True)
                _print_checks(results[name])
        todo = [n for n in claims.names() if n not in results]
        if todo:
            _reproduce_in_children(todo, args, results)
            ran += todo
        failed = [n for n in claims.names() if results[n]["verdict"] != "pass"]
        if len(ran) == len(claims.names()):            # every claim ran now: the total is a whole reproduce
            report.record_reproduce(args.out, args.preset, args.jobs, time.perf_counter() - start,
                                    {n: results[n]["wall_seconds"] for n in ran})
        try:
            for path in report.write(args.out):
                print(f"wrote {path}")
        except SandboxError as e:          # e.g. --full into a fresh --out: no quick results there
            print(f"REPORT.md not written: {e}")
        print(report.summary(args.out, args.preset))
        print(f"reproduced {len(claims.names())} claims in {time.perf_counter() - start:.0f} s; "
              f"failed: {', '.join(failed) or 'none'}")
        return 1 if failed else 0
    if args.cmd == "report":
        for path in report.write(args.out, readme=args.readme, custom=args.custom):
            print(f"wrote {path}")
        print(report.summary(args.out, "quick"))
        return 0
    if args.cmd == "plot":
        names = args.names or (claims.names() if args.preset == "quick"
                               else runner.available(args.out, args.preset))
        for name in names:
            claims.get(name)                   # every name checked before anything is redrawn
        for name in names:
            print(runner.replot(name, args.out, args.preset))
        return 0
    if args.cmd == "explore":
        return _explore(args)
    raise AssertionError(args.cmd)


def _explore(args) -> int:
    from theory.harness import explore, registry
    if args.from_file is not None:
        if args.name or args.grid or args.list:
            raise SandboxError("--from FILE redraws a finished explore; give no claim name, --grid or --list")
        result = explore.read(args.from_file)
        print(explore.boundary_table(result))
        print(f"redrew {explore.redraw(args.from_file)}")
        return 0
    if not args.name:
        raise SandboxError("explore needs a claim name (or --from FILE)")
    if args.list:
        module = registry.load(args.name)
        ks = explore.knobs(module)
        if not ks:
            print(f"{args.name} declares no knobs; any config field works with --grid FIELD=V1,V2,...")
        for i, k in enumerate(ks):
            main = " (main knob: the default grid)" if i == 0 else ""
            print(f"{k.field}{main}\n    values: {', '.join(explore.value_text(v) for v in k.values)}"
                  + (f"\n    part: {k.part}" if k.part else "") + (f"\n    {k.note}" if k.note else ""))
        return 0
    from theory.harness import jobs
    jobs.check_jobs(args.jobs)
    plan = explore.plan(args.name, args.grid, preset=args.preset, seeds=args.seeds, part=args.part)
    if args.worker:                       # one of `--jobs N`'s workers: its pairs, saved in the checkpoint
        explore.run(plan, args.out, progress=True, worker=True)
        return 0
    paths = plan.paths(args.out)
    from theory.harness.runner import ensure_writable, remove_created
    created = ensure_writable(list(paths))
    try:
        result = (explore.run(plan, args.out, progress=True) if args.jobs == 1
                  else explore.run_jobs(plan, args.out, args.jobs))
        explore.write(result, paths)
    except BaseException:
        remove_created(created)
        raise
    explore.clear_checkpoint(plan, args.out)
    print(explore.boundary_table(result))
    print(f"written: {paths[0]}, {paths[1]}")
    return 0


if __name__ == "__main__":
    entry()
