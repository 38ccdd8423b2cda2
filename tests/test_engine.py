"""The engine, sweeps, precision scoping, config overrides and the result contract."""
from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory.engine import train as engine
from theory.engine.keys import Keys
from theory.engine.precision import current, precision
from theory.engine.sweep import grid, sweep
from theory.errors import DivergenceError, SandboxError
from theory.harness import config as config_lib
from theory.harness.results import (
    SCHEMA_VERSION,
    at_least,
    at_most,
    close,
    holds,
    read_result,
    verdict,
    write_json_atomic,
)


def run_keys(seed: int, n: int):
    return Keys(seed).sub("test_engine").runs(n)


# --- a tiny regression problem: minimise 1/2 ||A w - b||^2 on fresh noisy batches ----------------
def _quadratic_run(key, *, lr, run_id=0, steps=200, opt="sgd", progress=None):
    A = jnp.diag(jnp.array([1.0, 2.0, 3.0]))

    def loss_fn(w, batch):
        return 0.5 * jnp.sum((A @ w - batch) ** 2)

    def sample(k):
        return jnp.array([1.0, 2.0, 3.0]) + 0.01 * jax.random.normal(k, (3,))

    optimizer = engine.make_optimizer(engine.OptimizerConfig(opt), lr, steps)
    return engine.train(key, jnp.zeros(3), loss_fn, sample, optimizer, steps=steps, log_every=20,
                        progress=progress, run_id=run_id)


def test_train_converges_and_logs():
    w, trace = _quadratic_run(jax.random.PRNGKey(0), lr=0.1)
    np.testing.assert_allclose(w, [1.0, 1.0, 1.0], atol=0.02)
    assert trace.loss.shape == (10,) and trace.step.tolist() == list(range(20, 201, 20))
    assert int(trace.first_bad_step) == -1
    assert trace.loss[-1] < trace.loss[0]


def test_same_seed_same_numbers():
    a = _quadratic_run(jax.random.PRNGKey(3), lr=0.1)
    b = _quadratic_run(jax.random.PRNGKey(3), lr=0.1)
    c = _quadratic_run(jax.random.PRNGKey(4), lr=0.1)
    assert np.array_equal(a[1].loss, b[1].loss)
    assert not np.array_equal(a[1].loss, c[1].loss)


def test_vmapped_sweep_equals_single_runs():
    keys = run_keys(0, 3)
    lrs = jnp.array([0.05, 0.1, 0.2])
    w, trace = sweep(_quadratic_run, keys, shard=False, lr=lrs)
    for i in range(3):
        wi, ti = _quadratic_run(keys[i], lr=lrs[i])
        np.testing.assert_allclose(w[i], wi, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(trace.loss[i], ti.loss, rtol=1e-5, atol=1e-7)


def test_run_keys_do_not_depend_on_sweep_size():
    np.testing.assert_array_equal(run_keys(7, 2), run_keys(7, 5)[:2])


def test_sharded_sweep_equals_unsharded_on_8_devices():
    assert jax.device_count() >= 8, "conftest must provide 8 host CPU devices"
    keys = run_keys(1, 6)              # 6 runs: padded to 8 and unpadded again
    lrs = jnp.linspace(0.05, 0.2, 6)
    sharded = sweep(_quadratic_run, keys, shard=True, n_devices=8, lr=lrs)
    plain = sweep(_quadratic_run, keys, shard=False, lr=lrs)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), sharded, plain)
    assert sharded[0].shape == (6, 3)


def test_sweep_output_is_sharded_over_runs():
    keys = run_keys(2, 8)
    w, _ = sweep(_quadratic_run, keys, shard=True, n_devices=8, lr=jnp.full((8,), 0.1))
    assert isinstance(w.sharding, jax.sharding.NamedSharding)
    assert len(w.sharding.device_set) == 8


def test_grid_is_cartesian():
    g = grid(lr=[1.0, 2.0], scale=[0.1, 0.2, 0.3])
    assert g["lr"].tolist() == [1, 1, 1, 2, 2, 2] and g["scale"].tolist() == [0.1, 0.2, 0.3] * 2


def test_divergence_is_detected_and_named():
    _, trace = _quadratic_run(jax.random.PRNGKey(0), lr=10.0)   # lr * curvature 9 >> 2: diverges
    assert int(trace.first_bad_step) >= 0
    with pytest.raises(DivergenceError, match=r"diverged .* at step \d+ .*lr=10"):
        engine.raise_if_diverged(trace, "quadratic", {"lr": 10.0})


def test_divergence_in_a_sweep_names_the_run():
    _, trace = sweep(_quadratic_run, run_keys(0, 3), shard=False, lr=jnp.array([0.1, 10.0, 0.1]))
    with pytest.raises(DivergenceError, match=r"run 1 with lr=10"):
        engine.raise_if_diverged(trace, "quadratic", {"lr": jnp.array([0.1, 10.0, 0.1])})


def test_normalized_gd_steps_have_unit_norm():
    opt = engine.make_optimizer(engine.OptimizerConfig("normalized_gd"), 0.1, 10)
    g = {"a": jnp.array([3e-200, 4e-200]) if jax.config.jax_enable_x64 else jnp.array([3e-30, 4e-30])}
    upd, _ = opt.update(g, opt.init(g))
    np.testing.assert_allclose(upd["a"], [-0.06, -0.08], rtol=1e-5)


def test_cosine_schedule_and_unknown_optimizer():
    cfg = engine.OptimizerConfig("sgd", schedule="cosine")
    sched = engine.make_schedule(cfg, 1.0, 100)
    assert float(sched(jnp.array(0))) == pytest.approx(1.0)
    assert float(sched(jnp.array(100))) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(SandboxError, match="unknown optimizer"):
        engine.make_optimizer(engine.OptimizerConfig("lbfgs"), 0.1, 10)


def test_progress_lines_on_stderr(capfd):
    _quadratic_run(jax.random.PRNGKey(0), lr=0.1, progress="demo")
    jax.effects_barrier()
    err = capfd.readouterr().err
    assert "[demo] step 200/200" in err


def test_steps_must_be_multiple_of_log_every():
    with pytest.raises(SandboxError, match="multiple of log_every"):
        engine.train(jax.random.PRNGKey(0), jnp.zeros(1), lambda w, b: jnp.sum(w), lambda k: 0.0,
                     engine.make_optimizer(engine.OptimizerConfig("gd"), 0.1, 10), steps=10, log_every=3)


# --- precision scoping ----------------------------------------------------------------------------
def test_precision_is_scoped_and_does_not_leak():
    assert current() == "float32"
    with precision("float64"):
        assert jnp.zeros(1).dtype == jnp.float64
        with precision("float32"):
            assert jnp.zeros(1).dtype == jnp.float32
        assert current() == "float64"
    assert current() == "float32" and jnp.zeros(1).dtype == jnp.float32
    with pytest.raises(ValueError):
        with precision("float16"):
            pass


def test_precision_restored_after_exception():
    with pytest.raises(RuntimeError):
        with precision("float64"):
            raise RuntimeError("boom")
    assert current() == "float32"


# --- config overrides -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Cfg:
    d: int = 3
    lr: float = 0.1
    name: str = "a"
    flag: bool = False
    lam: tuple[float, ...] = (1.0, 2.0)
    opt: int | None = None


def test_overrides_are_typed():
    c = config_lib.apply_overrides(_Cfg(), ["d=6", "lr=1e-3", "name=b", "flag=true", "lam=3,4,5", "opt=none"])
    assert c == _Cfg(d=6, lr=1e-3, name="b", flag=True, lam=(3.0, 4.0, 5.0), opt=None)


@pytest.mark.parametrize("bad, match", [
    (["depth=3"], r"unknown field .* valid fields: d, flag, lam, lr, name, opt"),
    (["d=3.5"], r"d=3.5: expected a value of type int"),
    (["lr=fast"], r"lr=fast: expected a value of type float"),
    (["d"], r"FIELD=VALUE"),
])
def test_bad_overrides_name_the_field(bad, match):
    with pytest.raises(SandboxError, match=match):
        config_lib.apply_overrides(_Cfg(), bad)


def test_require_positive():
    with pytest.raises(SandboxError, match="d must be positive"):
        config_lib.require_positive(_Cfg(d=-1), "d")
    with pytest.raises(SandboxError, match="lam must be positive"):
        config_lib.require_positive(_Cfg(lam=(1.0, 0.0)), "lam")


# --- result contract ------------------------------------------------------------------------------
def test_checks_slack_and_verdict():
    ok = close("a", "a is one", "predicted", 1.0, 1.005, 0.01, "float32 rounding")
    assert ok.passed and ok.slack == pytest.approx(0.005) and ok.op == "==" and ok.metric == "rel"
    bad = at_most("b", "b is small", "expected", 0.1, float("nan"), "reference runs")
    assert not bad.passed and bad.slack == -float("inf") and bad.bound == 0.1 and bad.predicted is None
    low = at_least("c", "c is large", "predicted", 0.5, 0.6, "a bound")
    assert low.passed and low.slack == pytest.approx(0.1)
    assert at_least("c2", "c is large", "predicted", 0.5, 0.4, "a bound").slack == pytest.approx(-0.1)
    absolute = close("d", "d is zero", "exact", 0.0, -3e-3, 1e-2, "rounding", rel=False)
    assert absolute.passed and absolute.error == pytest.approx(3e-3)
    sanity = holds("e", "the solver is feasible", "sanity", "margins >= 1", "all", True, "construction")
    assert verdict([ok]) == "pass" and verdict([ok, bad]) == "fail" and verdict([]) == "fail"
    assert verdict([sanity]) == "fail", "sanity checks alone are no evidence"
    assert verdict([ok, sanity]) == "pass"


@pytest.mark.parametrize("field, value, match", [
    ("name", "Not Snake", "snake_case"), ("kind", "empirical", "kind"), ("op", "<", "op"),
    ("why", "see issue #3", "cite"), ("why", "research A5", "cite"), ("why", "pitfall 7", "cite"),
    ("label", "", "required"),
])
def test_check_fields_are_validated(field, value, match):
    good = close("a", "a is one", "predicted", 1.0, 1.0, 0.1, "exact")
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(good, **{field: value})


def test_schema_version_is_one_constant(tmp_path):
    write_json_atomic(tmp_path / "old.json", {"schema": SCHEMA_VERSION - 1})
    with pytest.raises(SandboxError, match="schema"):
        read_result(tmp_path / "old.json")
    (tmp_path / "latin1.json").write_bytes(b'{"x": "\xff\xfe"}'.replace(b"\\", b"\\") + b"\xff")
    with pytest.raises(SandboxError, match="UTF-8|JSON"):
        read_result(tmp_path / "latin1.json")


# --- one compile per shape ---------------------------------------------------------------------
class _CompileCounter:
    """Counts programs XLA had to prepare, through JAX's monitoring events: backend compilations
    plus persistent-cache hits (theory/engine/cache.py), i.e. every trace that missed the
    in-memory jit cache."""
    COMPILED = "/jax/core/compile/backend_compile_duration"
    CACHE_HIT = "/jax/compilation_cache/cache_hits"

    def __init__(self):
        self.n = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_duration)
        jax.monitoring.register_event_listener(self._on_event)

    def _on_duration(self, event, duration, **kwargs):
        self.n += event == self.COMPILED

    def _on_event(self, event, **kwargs):
        self.n += event == self.CACHE_HIT


_COUNTER = _CompileCounter()


def _compiles(fn) -> int:
    before = _COUNTER.n
    jax.block_until_ready(fn())
    return _COUNTER.n - before


def test_training_over_steps_compiles_once():
    """engine.train is one lax.scan: 10x the steps is still one compiled program per shape."""
    import functools
    run = jax.jit(functools.partial(_quadratic_run, steps=400))
    first = _compiles(lambda: run(jax.random.PRNGKey(0), lr=0.1))
    assert first >= 1
    assert _compiles(lambda: run(jax.random.PRNGKey(1), lr=0.2)) == 0     # new key, new lr value


def test_second_identical_sweep_compiles_nothing():
    """The sweep cache is keyed on the run function's content: a partial rebuilt with the same
    arguments (as every claim does per call) reuses the compiled sweep."""
    import functools
    keys = run_keys(3, 4)
    lrs, lrs2 = jnp.full((4,), 0.1), jnp.full((4,), 0.2)
    first = _compiles(lambda: sweep(functools.partial(_quadratic_run, steps=60), keys, shard=False, lr=lrs))
    assert first >= 1
    again = _compiles(lambda: sweep(functools.partial(_quadratic_run, steps=60), keys, shard=False, lr=lrs2))
    assert again == 0
    other_shape = _compiles(lambda: sweep(functools.partial(_quadratic_run, steps=60), run_keys(3, 5),
                                          shard=False, lr=jnp.full((5,), 0.1)))
    assert other_shape >= 1


def test_write_json_atomic_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "r.json"
    with pytest.raises(TypeError):
        write_json_atomic(target, {"x": object()})
    assert list(tmp_path.iterdir()) == []
    write_json_atomic(target, {"x": np.float32(1.5), "y": np.arange(3), "z": float("inf")})
    assert json.loads(target.read_text()) == {"x": 1.5, "y": [0, 1, 2], "z": "inf"}


def test_read_result_errors(tmp_path):
    with pytest.raises(SandboxError, match="no results file"):
        read_result(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SandboxError, match="not valid JSON"):
        read_result(tmp_path / "bad.json")
    (tmp_path / "thin.json").write_text(json.dumps({"schema": SCHEMA_VERSION}))
    with pytest.raises(SandboxError, match="lacks keys"):
        read_result(tmp_path / "thin.json")


def test_git_revision_is_dirty_only_for_code(tmp_path):
    """Rewriting outputs (results, figures, README) does not mark a result dirty; editing code does."""
    import subprocess

    from theory.harness.results import git_revision
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    run("init", "-q")
    (tmp_path / "theory").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "theory" / "m.py").write_text("x = 1\n")
    (tmp_path / "results" / "r.json").write_text("{}\n")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert git_revision(tmp_path)["dirty"] is False
    (tmp_path / "results" / "r.json").write_text('{"x": 1}\n')
    (tmp_path / "README.md").write_text("new\n")
    assert git_revision(tmp_path)["dirty"] is False
    (tmp_path / "theory" / "m.py").write_text("x = 2\n")
    assert git_revision(tmp_path)["dirty"] is True


def test_sweep_uses_no_more_devices_than_runs():
    """3 runs on 8 devices: sharded over 3 devices, no padded copies trained."""
    w, _ = sweep(_quadratic_run, run_keys(4, 3), n_devices=8, lr=jnp.full((3,), 0.1))
    assert len(w.sharding.device_set) == 3


def test_sweeps_use_no_more_host_devices_than_cores_unless_told():
    from theory.engine.sweep import default_devices
    cores = len(os.sched_getaffinity(0))
    assert default_devices() == min(jax.device_count(), cores)
    w, _ = sweep(_quadratic_run, run_keys(4, 8), lr=jnp.full((8,), 0.1))
    assert len(w.sharding.device_set) == min(8, cores)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="counts Linux memory maps")
def test_release_compiled_returns_the_memory_maps_of_compiled_programs():
    """theory/engine/cache.py `release_compiled`: every live CPU executable holds memory maps (Linux
    caps them at vm.max_map_count; past it XLA's compiler segfaults), and releasing the programs
    returns them, so a process running many claims does not accumulate them."""
    from theory.engine.cache import release_compiled

    def maps() -> int:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)

    def program(i):
        def run(w, x):
            def step(w, _):
                g = jax.grad(lambda w: jnp.mean(jnp.tanh(x @ w) ** 2) * (i + 1.0))(w)
                return w - 0.1 * g, jnp.sum(w)
            return jax.lax.scan(step, w, None, length=4)
        return jax.jit(run)

    release_compiled()
    before = maps()
    alive = [program(i) for i in range(40)]  # 40 distinct programs kept alive (as caches keep them)
    for f in alive:
        f(jnp.ones((5, 5)), jnp.ones((3, 5)))[0].block_until_ready()
    held = maps()
    release_compiled()
    after = maps()
    assert held - before >= 40, (before, held)           # measured: ~17 maps per program
    assert after - before <= (held - before) / 4, (before, held, after)


def _branch_run(key, *, branch, fired, run_id=0):
    """Which lax.switch branches execute (each branch records itself through a host callback)."""
    x = jax.random.normal(key, ())

    def make(b):
        def f(x):
            jax.debug.callback(lambda: fired.add(b))
            return x + b
        return f
    return jax.lax.switch(branch, [make(0), make(1), make(2)], x)


def test_shared_sweep_inputs_stay_unbatched_and_compile_once():
    """sweep(shared=...) gives every run the same traced input, unbatched: a lax.switch on it runs
    one branch (a vmapped index would run all three), and another value compiles nothing."""
    import functools
    keys = run_keys(5, 3)
    fired: set = set()
    run = functools.partial(_branch_run, fired=fired)
    out = sweep(run, keys, shard=False, shared={"branch": jnp.int32(1)})
    assert fired == {1}
    np.testing.assert_allclose(np.asarray(out), np.asarray(jax.vmap(lambda k: jax.random.normal(k, ()))(keys)) + 1,
                               rtol=1e-6)
    fired.clear()
    assert _compiles(lambda: sweep(run, keys, shard=False, shared={"branch": jnp.int32(2)})) == 0
    assert fired == {2}
    fired.clear()
    sweep(run, keys, shard=False, branch=jnp.int32(2))                   # the same index as a per-run value
    assert fired == {0, 1, 2}
