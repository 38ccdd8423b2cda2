"""The claim contract: a claim is a sequence of parts, each a prediction, a measurement and a judge.

    predict(cfg)                   -> P   theory from the config alone: no training, no data draws
    measure(cfg, keys, progress)   -> M   training and evaluation only: no tolerances, no verdicts
    judge(cfg, P, M)               -> [Check]   pure: compares, never trains

P and M are plain dicts of JSON values (numbers, strings, lists, nested dicts). Whatever predict
and measure return (numpy or JAX arrays included) is converted to JSON values before the judge
sees it, so a judge reads exactly what the result file will hold. The runner stores them in the
result as `data[part] = {"predicted": P, "measured": M}`, so the figure is drawn from the result
file alone and a judge can be fed a perturbed measurement in a test without any training
(`tests/test_<claim>.py`).

`keys` handed to `measure` is the part's own stream `Keys(seed).sub(part.name)`; a part never
reads another part's state.

Theory conditional on a random problem. Some predictions hold for a sampled problem: a training
set, a teacher, a token-selection instance (e.g. the greedy saddle-to-saddle stages of a drawn
regression data set). Such a part declares

    draw(cfg, keys) -> problem            the random problem only, from the stream "<part>/problem";
                                          no training, nothing learned
    predict(cfg, problem) -> P            theory given the problem (still no training)
    measure(cfg, keys, progress, problem) -> M   training and evaluation on the same problem

so the seed varies the problem as well as the training, and the prediction stays free of anything
learned. (A reference that depends on what training produced, e.g. the max-margin SVM of the tokens
GD selected, is part of the measurement: it is computed in `measure` and named as conditional.)

`enabled(cfg)` lets a config leave a part out (e.g. an empty grid). `precision` runs the part
under float64 when the part needs it (the claim's default otherwise).

Non-finite values. A NaN or infinity in P or M is a broken run (a learning rate that overflowed
the model, a 0/0 in an evaluation), not evidence against the theory: `run_parts` raises
DivergenceError naming the part and the key (exit 2, nothing written) before the judge sees it.
The one exception is +inf as an explicit "never": a part lists in `unbounded` the top-level keys
of P or M whose +inf entries mean "never crossed" / "unbounded" (e.g. the step at which a
coordinate that never activated crossed its threshold, or the length of the last plateau). NaN
and -inf are never allowed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any, Callable, Sequence

from theory.engine import checkpoint, interrupt
from theory.engine.keys import Keys
from theory.engine.precision import precision as precision_scope
from theory.errors import DivergenceError
from theory.harness.results import Check, as_json, in_part, require_unique_names


def _always(cfg: Any) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Part:
    name: str
    predict: Callable[[Any], dict]
    measure: Callable[[Any, Keys, str | None], dict]
    judge: Callable[[Any, dict, dict], list[Check]]
    enabled: Callable[[Any], bool] = _always
    precision: str | None = None
    draw: Callable[[Any, Keys], Any] | None = None
    unbounded: tuple[str, ...] = ()      # keys of P or M whose +inf entries mean "never" (see above)


def enabled_parts(parts: Sequence[Part], cfg: Any) -> list[str]:
    """Names of the parts that run for `cfg`."""
    return [p.name for p in parts if p.enabled(cfg)]


_NONFINITE = ("nan", "inf", "-inf")       # how as_json stores non-finite floats


def _nonfinite(x: Any, path: str):
    """(path, value) of the non-finite numbers in a JSON value (as_json's "nan"/"inf"/"-inf")."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _nonfinite(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _nonfinite(v, f"{path}[{i}]")
    elif isinstance(x, str) and x in _NONFINITE:
        yield path, x


def require_finite(part: Part, P: dict, M: dict) -> None:
    """Raise DivergenceError at the first NaN or infinity in P or M (+inf allowed under `unbounded`)."""
    for side, values in (("predicted", P), ("measured", M)):
        if not isinstance(values, dict):
            continue
        for key, v in values.items():
            for where, x in _nonfinite(v, f"{side}.{key}"):
                if x == "inf" and key in part.unbounded:
                    continue
                raise DivergenceError(f"part {part.name} diverged: {where} = {x} (a non-finite "
                                      f"{'prediction' if side == 'predicted' else 'measurement'}; nothing written)")


def run_parts(parts: Sequence[Part], cfg: Any, keys: Keys, progress: str | None = None,
              seconds: dict | None = None) -> tuple[list[Check], dict]:
    """Predict, measure and judge every enabled part in turn; (checks, data) for the result.

    `seconds`, when given, receives each part's wall time {part: s} (a part restored from an
    interrupted run's checkpoint keeps the time it took then; one from an older checkpoint that
    did not record it is left out)."""
    checks: list[Check] = []
    data: dict = {}
    for part in parts:
        if not part.enabled(cfg):
            continue
        P, M, took = _resumable(part, cfg, keys, progress)
        if seconds is not None and took is not None:     # None: restored from a checkpoint without it
            seconds[part.name] = round(took, 2)
        checks += in_part(part.judge(cfg, P, M), part.name)
        data[part.name] = {"predicted": P, "measured": M}
    require_unique_names([c.name for c in checks])
    return checks, data


def _resumable(part: Part, cfg: Any, keys: Keys, progress: str | None) -> tuple[dict, dict, float | None]:
    """P and M of one part, from the checkpoint session when an interrupted run already finished
    it (theory/engine/checkpoint.py), else computed (its sweeps resume from their own slots) and
    saved there. The streams the part drew are saved with it, so a resumed result records the
    streams of an uninterrupted one."""
    session = checkpoint.current()
    interrupt.check(f"the start of part {part.name}")
    saved = session.load_part(part.name) if session is not None else None
    if saved is not None:
        keys._log.update(saved["streams"])
        return saved["predicted"], saved["measured"], saved.get("seconds")
    before = set(keys.streams())
    start = time.perf_counter()
    with _maybe_precision(part.precision), (session.part(part.name) if session else contextlib.nullcontext()):
        P, M = _predict_measure(part, cfg, keys.sub(part.name), progress and f"{progress}: {part.name}")
    require_finite(part, P, M)
    took = time.perf_counter() - start
    if session is not None:
        session.save_part(part.name, {"predicted": P, "measured": M, "seconds": took,
                                      "streams": sorted(set(keys.streams()) - before)})
    return P, M, took


def _predict_measure(part: Part, cfg: Any, keys: Keys, progress: str | None) -> tuple[dict, dict]:
    if part.draw is None:
        return as_json(part.predict(cfg)), as_json(part.measure(cfg, keys, progress))
    problem = part.draw(cfg, keys.sub("problem"))
    return (as_json(part.predict(cfg, problem)),
            as_json(part.measure(cfg, keys, progress, problem)))


def judge_part(parts: Sequence[Part], name: str, cfg: Any, data: dict) -> list[Check]:
    """Re-judge part `name` from a result's `data` (what the judge tests perturb)."""
    part = next(p for p in parts if p.name == name)
    return in_part(part.judge(cfg, data[name]["predicted"], data[name]["measured"]), name)


class _maybe_precision:
    def __init__(self, name: str | None):
        self._cm = precision_scope(name) if name else None

    def __enter__(self):
        return self._cm.__enter__() if self._cm else None

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc) if self._cm else False
