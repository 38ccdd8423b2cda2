"""Reference runs behind the `expected` thresholds of rank_growth (config.py, REFERENCE): run on base
seeds disjoint from the presets' (0, 1, 2), before the runs they judge, not part of any preset.

    python -m experiments.rank_growth.reference collapse diag_regression 100 140
    python -m experiments.rank_growth.reference collapse diag_attention 100 140
    python -m experiments.rank_growth.reference head 100 108

collapse  for each base seed b, the part's problem drawn from Keys(b) and GD at the full preset's
          alphas the part's checks read (diag_regression: every rescale alpha; diag_attention: the
          smallest att_alpha): the measured collapse constant c = max_k |tau_k / T_k - 1| x ln(1/alpha)
          per alpha (the bound of the checks is const / ln(1/alpha); const = 1.2 x the max of c)
head      for each base seed b, the full head's cfg.seeds runs (quick preset) under GD and Adam: per
          run, does the count of singular values above head_rel sigma_max climb 1, 2, .., r in order
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys

import numpy as np

import experiments.rank_growth as rg
from experiments.rank_growth.analysis import climbs_every_level, floats
from experiments.rank_growth.parts import full_head
from theory.engine.keys import Keys
from theory.engine.precision import precision
from theory.harness.results import as_json


def collapse_constants(part_name: str, seed: int) -> dict[float, float]:
    """{alpha: max_k |tau_k / T_k - 1| x ln(1/alpha)} of one problem (base seed `seed`), full alphas."""
    cfg = rg.Config.full()
    if part_name == "diag_attention":           # its checks read the smallest alpha only (same steps)
        cfg = dataclasses.replace(cfg, att_alphas=(min(cfg.att_alphas),))
    part = next(p for p in rg.PARTS if p.name == part_name)
    keys = Keys(seed).sub(part_name)
    problem = part.draw(cfg, keys.sub("problem"))
    P, M = as_json(part.predict(cfg, problem)), as_json(part.measure(cfg, keys, None, problem))
    times, coord = floats(P["times"]), [int(c) for c in P["coord"]]
    lr = cfg.reg_lr if part_name == "diag_regression" else cfg.att_lr
    act = floats(M["act"])                                                   # (A, p)
    return {a: float(np.abs(lr * act[j, coord] / math.log(1 / a) / times - 1).max()) * math.log(1 / a)
            for j, a in enumerate(M["alphas"])}


def head_climbs(base: int) -> dict[str, list[bool]]:
    """Per optimiser, per run of base seed `base` (quick preset): does the count climb 1, .., r in order."""
    cfg = rg.Config.quick()
    M = as_json(full_head.measure(cfg, Keys(base).sub("full_head"), None))
    r = len(cfg.head_s_kq)
    return {opt: [climbs_every_level(lv, r) for lv in full_head.live_levels(cfg, M[opt])]
            for opt in full_head.OPTIMIZERS}


def main(argv: list[str]) -> None:
    what, args = argv[0], argv[1:]
    out = {}
    with precision(rg.PRECISION):
        if what == "collapse":
            part_name, lo, hi = args[0], int(args[1]), int(args[2])
            for seed in range(lo, hi):
                out[seed] = collapse_constants(part_name, seed)
                print(seed, {f"{a:g}": round(c, 3) for a, c in out[seed].items()}, flush=True)
            c = max(max(v.values()) for v in out.values())
            print(f"{part_name}: max constant {c:.4f} over {len(out)} problems; 1.2 x max = {1.2 * c:.4f}")
        else:
            lo, hi = int(args[0]), int(args[1])
            for base in range(lo, hi):
                out[base] = head_climbs(base)
                print(base, out[base], flush=True)
            for opt in full_head.OPTIMIZERS:
                ok = [x for v in out.values() for x in v[opt]]
                print(f"{opt}: {sum(ok)}/{len(ok)} runs climb every level in order")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
