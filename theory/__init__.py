"""theory-sandbox: minimal JAX transformers checked number by number against analytic predictions.

Notebook API (theory/harness/api.py; the CLI's `sandbox run` / `sandbox explore` do the same):

    theory.run(name, preset="quick", seed=0, **overrides) -> Result
    theory.explore(name, grid={field: [values]}, seeds=K) -> ExploreResult
"""
__version__ = "0.1.0"


def run(name, preset="quick", seed=0, seeds=None, **kwargs):
    """Run a claim as `sandbox run` does; keyword arguments are `--set` overrides. See theory/harness/api.py."""
    from theory.harness import api
    return api.run(name, preset, seed, seeds, **kwargs)


def explore(name, grid=None, seeds=1, **kwargs):
    """Map a claim's checks over a grid as `sandbox explore` does. See theory/harness/api.py."""
    from theory.harness import api
    return api.explore(name, grid, seeds, **kwargs)
