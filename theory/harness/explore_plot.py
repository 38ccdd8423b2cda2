"""The figure of an explore result (theory/harness/explore.py), drawn from the result file alone.

One field: a panel per check, its slack (>= 0 iff it passed; symmetric-log axis) against the field,
each seed a point, the pass region shaded, the paper's or preset's setting a dotted line; a first
panel gives the fraction of seeds passing every check. Two fields: a verdict map per check (and for
all checks): the fraction of seeds passing at each grid point, the marked setting outlined.
A diverged or refused (point, seed) counts as not passing and is drawn as an x.
"""
from __future__ import annotations

import math
from numbers import Real

import matplotlib.patches as patches
import numpy as np

from theory.harness.explore import check_names, pass_fraction, value_text
from theory.harness.plotting import figure

NCOLS = 4
PASS = dict(color="tab:green", alpha=0.12)


def _numeric(values: list) -> bool:
    return all(isinstance(v, Real) and not isinstance(v, bool) for v in values)


def _axis(values: list) -> tuple[np.ndarray, str, list[str]]:
    """x positions of the grid values: numeric (log when positive and spanning >= 20x) or categorical."""
    if _numeric(values):
        x = np.asarray(values, dtype=float)
        scale = "log" if np.all(x > 0) and x.max() / x.min() >= 20 else "linear"
        return x, scale, []
    return np.arange(len(values), dtype=float), "linear", [value_text(v) for v in values]


def _mark_position(values: list, mark) -> float | None:
    if mark is None:
        return None
    if _numeric(values) and isinstance(mark, Real) and not isinstance(mark, bool):
        return float(mark)
    texts = [value_text(v) for v in values]
    return float(texts.index(value_text(mark))) if value_text(mark) in texts else None


def _slack(c: dict) -> float:
    s = c["slack"]
    return {"inf": math.inf, "-inf": -math.inf}.get(s, s) if isinstance(s, str) else float(s)


def plot(result: dict):
    fields = result["fields"]
    return _one_field(result) if len(fields) == 1 else _two_fields(result)


def _entry(value, axis: str | None):
    """The entry of a tuple value the axis shows ("first" / "last"; None: the value itself)."""
    if axis and isinstance(value, list) and value:
        return value[0] if axis == "first" else value[-1]
    return value


def _one_field(result: dict):
    field = result["fields"][0]
    axis = result.get("axes", {}).get(field)
    values = [_entry(v, axis) for v in result["grid"][field]]
    x, scale, labels = _axis(values)
    mark = _mark_position(values, _entry(result["marks"][field]["value"], axis))
    names = check_names(result)
    n = len(names) + 1
    ncols = min(NCOLS, n)
    fig, axes = figure(math.ceil(n / ncols), ncols, width=3.4, height=2.6)
    flat = axes.ravel()

    def style(ax, title):
        ax.set_title(title, fontsize=8)
        ax.set_xscale(scale)
        if labels:
            ax.set_xticks(x, labels, rotation=30, fontsize=7)
        if mark is not None:
            ax.axvline(mark, color="black", ls=":", lw=1)
        ax.set_xlabel(field + (f" ({axis} entry)" if axis else ""), fontsize=8)

    ax = flat[0]
    frac = [pass_fraction(r, None) for r in result["points"]]
    ax.plot(x, [np.nan if f is None else f for f in frac], "o-", color="black")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("seeds passing")
    style(ax, "all checks")
    for ax, name in zip(flat[1:], names):
        finite = []
        for xi, row in zip(x, result["points"]):
            for run in row["runs"]:
                got = [c for c in run["checks"] if c["name"] == name]
                if run["status"] != "ok":
                    ax.plot([xi], [0.0], "x", color="tab:red")
                elif got:
                    s = _slack(got[0])
                    y = s if math.isfinite(s) else None
                    if y is None:
                        ax.plot([xi], [0.0], "^" if s > 0 else "v", color="tab:purple")
                    else:
                        finite.append(abs(y))
                        ax.plot([xi], [y], "o", ms=3.5, color="tab:blue" if got[0]["passed"] else "tab:red")
        pos = [f for f in finite if f > 0]
        lin = 10 ** math.floor(math.log10(min(pos))) if pos else 1.0
        ax.set_yscale("symlog", linthresh=max(lin, 1e-12))
        ax.axhspan(0, max(finite + [1.0]) * 10, **PASS)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel("slack (>= 0 passes)", fontsize=7)
        style(ax, name)
    for ax in flat[n:]:
        ax.set_visible(False)
    fig.suptitle(_title(result), fontsize=9)
    return fig


def _two_fields(result: dict):
    f1, f2 = result["fields"]
    v1, v2 = result["grid"][f1], result["grid"][f2]
    rows = {(value_text(r["point"][f1]), value_text(r["point"][f2])): r for r in result["points"]}
    names = [None] + check_names(result)
    n = len(names)
    ncols = min(NCOLS, n)
    fig, axes = figure(math.ceil(n / ncols), ncols, width=3.4, height=3.0)
    flat = axes.ravel()
    m1, m2 = (value_text(result["marks"][f]["value"]) for f in (f1, f2))
    for ax, name in zip(flat, names):
        grid = np.full((len(v1), len(v2)), np.nan)
        for i, a in enumerate(v1):
            for j, b in enumerate(v2):
                frac = pass_fraction(rows[(value_text(a), value_text(b))], name)
                grid[i, j] = np.nan if frac is None else frac
        ax.imshow(grid, origin="lower", cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
        ax.grid(False)
        for i in range(len(v1)):
            for j in range(len(v2)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", fontsize=6)
        t1, t2 = [value_text(v) for v in v1], [value_text(v) for v in v2]
        if m1 in t1 and m2 in t2:
            i, j = t1.index(m1), t2.index(m2)
            ax.add_patch(patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="black"))
        ax.set_xticks(range(len(v2)), t2, rotation=30, fontsize=7)
        ax.set_yticks(range(len(v1)), t1, fontsize=7)
        ax.set_xlabel(f2, fontsize=8)
        ax.set_ylabel(f1, fontsize=8)
        ax.set_title(name or "all checks", fontsize=8)
    for ax in flat[n:]:
        ax.set_visible(False)
    fig.suptitle(_title(result) + "  (cell: fraction of seeds passing; outlined: "
                 f"{result['marks'][f1]['source']} setting)", fontsize=9)
    return fig


def _title(result: dict) -> str:
    part = f", part {result['part']}" if result.get("part") else ""
    return (f"{result['claim']} ({result['preset']}{part}) over {' x '.join(result['fields'])}, "
            f"{result['seeds']} seed(s) per point")
