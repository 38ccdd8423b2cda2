"""Shared figure style and atomic, byte-stable figure writing (matplotlib's Agg backend, no display needed).

Redrawing a figure from the same result gives the same bytes: the SVG hash salt (the seed of the
ids matplotlib gives clip paths and glyphs) is fixed, and neither file records a date or the
matplotlib version (SVG `Date`/`Creator`, PNG `Software` metadata are left out).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from theory.engine.files import file_mode, temp_prefix  # noqa: E402

PRED = dict(color="black", ls="--", lw=1.5)   # predictions: black dashed
MEAS = dict(color="tab:blue", lw=1.8)         # measurements: solid colour
CONTROL = dict(color="tab:red", lw=1.5)       # negative controls

plt.rcParams.update({
    "figure.dpi": 110, "savefig.dpi": 110, "font.size": 9, "axes.titlesize": 10,
    "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "legend.frameon": False,
    "axes.spines.top": False, "axes.spines.right": False,
    "svg.hashsalt": "theory-sandbox",          # stable SVG ids across redraws
})

METADATA = {".svg": {"Date": None, "Creator": None}, ".png": {"Software": None}, ".pdf": {"CreationDate": None}}


def figure(nrows: int, ncols: int, width: float = 4.0, height: float = 3.2, **kw):
    kw.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)


def render_atomic(fig, targets: list[Path]) -> list[Path]:
    """Render `fig` to temporary files beside each target; return the temp paths (not yet moved).

    The caller moves them into place with `os.replace` once every output is ready, so an error
    never leaves a half-written figure behind; on an error here every temporary file is removed.
    Files get the mode a plain `open()` would give them (0o666 minus the umask).
    """
    temps = []
    try:
        for path in targets:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
            os.close(fd)
            temps.append(Path(tmp))
            fig.savefig(tmp, format=path.suffix.lstrip("."), bbox_inches="tight",
                        metadata=METADATA.get(path.suffix))
            os.chmod(tmp, file_mode())
    except BaseException:
        for t in temps:
            t.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return temps
