"""`sandbox`: list, run, reproduce, report, plot and bench the registered claims.

Exit codes: 0 every check passed, 1 a check failed, 2 bad input (unknown claim, bad --set,
non-positive size, unwritable output, diverging run, missing results file), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from theory.errors import SandboxError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sandbox", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("list", help="names, statements and papers of all claims")

    def preset_flags(q):
        g = q.add_mutually_exclusive_group()
        g.add_argument("--quick", dest="preset", action="store_const", const="quick",
                       help="the test-sized preset (default)")
        g.add_argument("--full", dest="preset", action="store_const", const="full",
                       help="the publication preset used for the figures")
        q.set_defaults(preset="quick")
        q.add_argument("--out", type=Path, default=None,
                       help="write DIR/results and DIR/figures instead of the repository's")

    r = sub.add_parser("run", help="run one claim: train, predict, compare, write result and figure")
    r.add_argument("name")
    preset_flags(r)
    r.add_argument("--seed", type=int, default=0, help="base seed (run i uses fold_in(seed, i))")
    r.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a config field (repeatable)")

    rp = sub.add_parser("reproduce", help="run every claim, then write the claims table")
    preset_flags(rp)

    rep = sub.add_parser("report", help="write REPORT.md and the README summary blocks from the results files")
    rep.add_argument("--out", type=Path, default=None,
                     help="read DIR/results and write DIR/REPORT.md (and DIR/README.md if present)")

    pl = sub.add_parser("plot", help="redraw figures from results files without training")
    pl.add_argument("names", nargs="*")
    preset_flags(pl)

    b = sub.add_parser("bench", help="speed ratios measured in one run on this machine")
    b.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    return p


def _print_checks(result: dict) -> None:
    from theory.harness.report import counts, fmt, theory_column
    rows = [("check", "kind", "theory", "measured", "slack", "pass")]
    for c in result["checks"]:
        rows.append((c["name"], c["kind"], theory_column(c), fmt(c["measured"]), fmt(c["slack"]),
                     "PASS" if c["passed"] else "FAIL"))
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(x[:60].ljust(w) for x, w in zip(r, widths)))
    ep, et, sp, st = counts(result)
    print(f"{result['claim']}: {result['verdict'].upper()} (evidence {ep}/{et}, sanity {sp}/{st}; "
          f"{result['preset']}, {result['wall_seconds']:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except SandboxError as e:
        print(f"sandbox: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sandbox: interrupted; no result or figure was written for the unfinished claim",
              file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    if args.cmd == "bench":   # before anything imports JAX: the bench sets the host device count
        from theory import bench
        bench.main(quick=args.quick)
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
        start, failed = time.perf_counter(), []
        for name in claims.names():
            print(f"== {name} ({args.preset})", flush=True)
            result = runner.run_claim(name, args.preset, out=args.out, progress=True)
            _print_checks(result)
            if result["verdict"] != "pass":
                failed.append(name)
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
        for path in report.write(args.out):
            print(f"wrote {path}")
        print(report.summary(args.out, "quick"))
        return 0
    if args.cmd == "plot":
        names = args.names or (claims.names() if args.preset == "quick"
                               else runner.available(args.out, args.preset))
        for name in names:
            print(runner.replot(name, args.out, args.preset))
        return 0
    raise AssertionError(args.cmd)


if __name__ == "__main__":
    sys.exit(main())
