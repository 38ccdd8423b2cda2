"""`sandbox bench`: speed and memory of every claim's training step, measured in one process on this
machine (never asserted in tests: tests/test_bench.py runs the pieces at tiny sizes only).

Rows (ratios are taken within this one run, so a machine shared with other jobs inflates both sides):
    per claim (theory/bench/claims.py)   fused engine run vs a naive per-step loop; K vmapped seeds
                                         vs K sequential runs (compile included); programs compiled;
                                         useful FLOP/s of the step as a fraction of the float32 matmul
                                         throughput measured here; compiled memory of the run
    RPE (theory/bench/rpe.py)            the randomized-positional-encodings protocol (1000 steps)
                                         against a loop that does what the public code does; pad-to-max
                                         vs length buckets on that model
    quick presets (full bench only)      each claim's whole quick preset in a child process: wall time
                                         and peak RSS with an empty compilation cache (cold) and again
                                         with the same cache (warm; theory/engine/cache.py)
    explore (theory/bench/claims.py)     one README explore grid as a child `sandbox explore`, in one
                                         process and with --jobs 2, each with an empty compilation cache
                                         (cold) and again with it (warm): wall times, same numbers

The bench's own timings never use the persistent compilation cache (cold compiles); only the
child processes of the cold/warm rows do. `--quick` is a smoke run of the same code at small sizes
(20 steps, no seeds rows, no child quick presets, a small cold/warm child): its JSON goes to the
temp folder; the full bench writes results/bench.json.

`sandbox bench NAME ...` measures only those claims' rows (no RPE row) and merges them into the
existing results/bench.json, replacing those claims' rows and keeping the others (`explore` as a
NAME measures the explore rows the same way). Every claim row carries the machine facts and the
matmul throughput of the run that measured it (`measured`), so each ratio and FLOP fraction is
still taken within one run; the table marks a row measured on another date than the file's header.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH_JSON = REPO / "results" / "bench.json"
SCHEMA = 1
EXPLORE = "explore"          # `sandbox bench explore`: the explore row only (merged like a claim's rows)


def _fmt_s(x: float) -> str:
    return f"{x:.1f} s" if x >= 10 else f"{x:.2f} s"


def table(result: dict) -> list[tuple[str, str, str, str]]:
    """(measurement, ours, reference, ratio) rows of a bench result."""
    rows = []
    day = result["machine"]["date"][:10]
    for name, r in result["claims"].items():
        if "error" in r:
            rows.append((f"{name}", "error", r["error"][:40], ""))
            continue
        own = r.get("measured", {})
        peak = own.get("matmul_flops_per_second", result["matmul_flops_per_second"])
        when = own.get("date", result["machine"]["date"])[:10]
        tag = f"{name} ({r['part']}, {r['steps']} steps{'' if when == day else ', measured ' + when})"
        rows.append((f"{tag}: engine vs naive loop", f"{r['fused_steps_per_second']:,.0f} steps/s",
                     f"{r['naive_steps_per_second']:,.0f} steps/s", f"{r['fused_vs_naive']:.2f}x"))
        rows.append((f"{name}: programs compiled, engine / naive", f"{r['fused_programs']}",
                     f"{r['naive_programs']}", ""))
        if "seeds" in r:
            s = r["seeds"]
            rows.append((f"{name}: {s['K']} vmapped seeds vs {s['K']} sequential (compile incl.)",
                         _fmt_s(s["vmapped_seconds"]), _fmt_s(s["sequential_seconds"]), f"{s['ratio']:.2f}x"))
        rows.append((f"{name}: useful FLOP/s of the step vs f32 matmul",
                     f"{r['achieved_flops_per_second'] / 1e9:.2f} G",
                     f"{peak / 1e9:.1f} G", f"{100 * r['fraction_of_matmul_peak']:.1f}%"))
        mem = f"{r['compiled_memory_bytes'] / 2 ** 20:.0f} MiB compiled"
        qp = result.get("quick_presets", {}).get(name)
        rows.append((f"{name}: memory (run / whole quick preset peak RSS)", mem,
                     f"{qp['cold']['peak_rss_bytes'] / 2 ** 30:.2f} GiB" if qp else "-", ""))
        if qp:
            rows.append((f"{name}: quick preset, cold vs warm compile cache", _fmt_s(qp["cold"]["seconds"]),
                         _fmt_s(qp["warm"]["seconds"]), f"{qp['cold']['seconds'] / qp['warm']['seconds']:.2f}x"))
    for key, err in result.get("errors", {}).items():
        rows.append((key, "error", err[:40], ""))
    rp = result.get("rpe")
    if rp:
        o, b, p = rp["ours"], rp["baseline"], rp["pad_vs_buckets"]
        n = rp["protocol"]["steps"]
        rows.append((f"RPE {n} steps: ours vs public-code loop (total, compile incl.)", _fmt_s(o["seconds"]),
                     _fmt_s(b["seconds"]), f"{rp['ratio']:.2f}x"))
        rows.append(("RPE: steps/s, compile excluded", f"{o['steps_per_second']:.2f}", f"{b['steps_per_second']:.2f}",
                     f"{o['steps_per_second'] / b['steps_per_second']:.2f}x"))
        rows.append(("RPE: same batches: max |loss diff| of the logged means", f"{rp['log_losses_max_abs_diff']:.1e}",
                     f"first {rp['first_losses_max_abs_diff']:.1e}", ""))
        rows.append(("RPE: compile time (programs)", f"{_fmt_s(o['compile_seconds'])} ({o['programs']})",
                     f"{_fmt_s(b['compile_seconds'])} ({b['programs']})",
                     f"{b['compile_seconds'] / o['compile_seconds']:.2f}x"))
        rows.append((f"RPE: buckets {tuple(p['buckets']['buckets'])} vs pad-to-max, ms/step",
                     f"{p['buckets']['ms_per_step']:.0f} ms", f"{p['pad_to_max']['ms_per_step']:.0f} ms",
                     f"{p['compute_ratio']:.2f}x"))
        rows.append(("RPE: GFLOP per step, buckets vs pad-to-max (useful)",
                     f"{p['buckets']['flops_per_step'] / 1e9:.2f}", f"{p['pad_to_max']['flops_per_step'] / 1e9:.2f}",
                     f"({p['buckets']['useful_flops_per_step'] / 1e9:.2f})"))
    ex = result.get("explore")
    if ex:
        for start in ("cold", "warm"):
            e = ex[start]
            rows.append((f"explore {ex['args'][0]} ({e['one_process']['runs']} runs, {start} compile cache): "
                         f"--jobs {ex['jobs']} vs one process", _fmt_s(e["workers"]["seconds"]),
                         _fmt_s(e["one_process"]["seconds"]), f"{e['ratio']:.2f}x"))
        rows.append(("explore: the four maps hold the same numbers", "yes" if ex["same_numbers"] else "NO", "", ""))
    c = result.get("cache")
    if c:
        rows.append((f"compile cache cold vs warm: {c['what']}", _fmt_s(c["cold"]["seconds"]),
                     _fmt_s(c["warm"]["seconds"]), f"{c['cold']['seconds'] / c['warm']['seconds']:.2f}x"))
    return rows


def render(result: dict) -> str:
    m = result["machine"]
    head = (f"sandbox bench ({'quick' if result['quick'] else 'full'}), {m['date']}: {m['cpu_model']}, "
            f"{m['cores']} cores, jax {m['jax']}; f32 matmul {result['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s; "
            f"{result['bench_seconds']:.0f} s")
    for u in result.get("updates", []):
        head += f"; rows of {', '.join(u['claims'])} measured {u['date'][:10]} ({u['seconds']:.0f} s)"
    rows = [("measurement", "ours", "reference", "ratio")] + table(result)
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [head] + ["  ".join([r[0].ljust(w[0])] + [r[i].rjust(w[i]) for i in (1, 2, 3)]) for r in rows]
    return "\n".join(lines)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def write(result: dict, path: Path) -> Path:
    """Atomic JSON write (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(_jsonable(result), f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def _guarded(result: dict, key: str, fn) -> None:
    """result[key] = fn(), or the error under result["errors"][key] (a failed row, not a lost bench)."""
    try:
        result[key] = fn()
    except Exception as e:                           # noqa: BLE001
        result.setdefault("errors", {})[key] = f"{type(e).__name__}: {e}"
        print(f"[bench] {key} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


def merged(new: dict, path: Path) -> dict:
    """`new` (a bench of some claims only) merged into the bench file at `path`: its claim and
    quick-preset rows replace those of the file, every other row of the file is kept; without a
    readable file of this schema, `new` alone."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return new
    if old.get("schema") != SCHEMA or old.get("quick"):
        return new
    out = dict(old)
    rows = list(new["claims"]) + ([EXPLORE] if EXPLORE in new else [])
    out["updates"] = [*old.get("updates", []), {"claims": rows, "date": new["machine"]["date"],
                                                 "seconds": new["bench_seconds"]}]
    out["claims"] = {**old.get("claims", {}), **new["claims"]}
    out["quick_presets"] = {**old.get("quick_presets", {}), **new.get("quick_presets", {})}
    if EXPLORE in new:
        out[EXPLORE] = new[EXPLORE]
    errors = {k: v for k, v in old.get("errors", {}).items() if k not in ("quick_presets", EXPLORE)}
    errors.update(new.get("errors", {}))
    out["errors"] = errors
    if not errors:
        out.pop("errors")
    return out


def main(quick: bool = False, names: list[str] | None = None, out: Path | None = None) -> dict:
    """Measure every row (or, with `names`, those claims' rows merged into results/bench.json), print
    the table, write the JSON (see the module docstring)."""
    from theory.bench import claims, machine, rpe
    from theory.errors import SandboxError
    known = claims.claim_names()
    explore_row = names is not None and EXPLORE in names
    names = None if names is None else [n for n in names if n != EXPLORE]
    unknown = [n for n in names or () if n not in known]
    if unknown or (names is not None and len(set(names)) != len(names)):
        raise SandboxError(f"bench: claims must be distinct names from {', '.join(known)} (or {EXPLORE}); "
                           f"got {' '.join(names)}")
    os.environ["SANDBOX_NO_COMPILE_CACHE"] = "1"          # the bench's own compiles stay cold
    t0 = time.perf_counter()
    result: dict = {"schema": SCHEMA, "quick": quick, "machine": machine.facts(),
                    "matmul_flops_per_second": machine.matmul_flops_per_second()}
    steps, K = (20, 0) if quick else (200, 4)
    result.update(steps=steps, seeds_K=K, claims={})
    measured = {"date": result["machine"]["date"], "load_average_at_start": result["machine"]["load_average_at_start"],
                "matmul_flops_per_second": result["matmul_flops_per_second"]}
    for name in known if names is None else names:
        print(f"[bench] {name}", file=sys.stderr, flush=True)
        try:
            result["claims"][name] = claims.row(name, steps, K, result["matmul_flops_per_second"])
        except Exception as e:                       # noqa: BLE001 (one claim's failure is a row, not a crash)
            result["claims"][name] = {"error": f"{type(e).__name__}: {e}"}
        result["claims"][name]["measured"] = measured
    if names is None:
        print("[bench] rpe", file=sys.stderr, flush=True)
        _guarded(result, "rpe", lambda: rpe.row(quick))
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        if names is None or explore_row:
            print("[bench] explore --jobs 2 (child processes)", file=sys.stderr, flush=True)
            _guarded(result, "explore", lambda: claims.explore_jobs(Path(tmp), quick))
        if quick:
            _guarded(result, "cache", lambda: rpe.cache_row(Path(tmp)))
        else:
            print("[bench] quick presets (child processes)", file=sys.stderr, flush=True)
            _guarded(result, "quick_presets", lambda: claims.claims_memory(list(result["claims"]), Path(tmp)))
    result["bench_seconds"] = time.perf_counter() - t0
    path = out or (Path(tempfile.gettempdir()) / "sandbox-bench-quick.json" if quick else BENCH_JSON)
    if names is not None and not quick:
        result = merged(result, path)
    print(render(result))
    print(f"wrote {write(result, path)}")
    return result
