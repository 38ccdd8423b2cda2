"""One process of a (possibly multi-process) sweep, for tests/test_distributed.py.

    python sweep_worker.py OUT.npz N_PROCESSES PROCESS_ID PORT

With N_PROCESSES > 1 it joins a localhost coordinator (`jax.distributed.initialize`) with CPU
collectives (gloo), so the sweep's run axis is sharded over the devices of every process.
Process 0 writes the sweep's output to OUT.npz.
"""
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

out, n_proc, pid, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if n_proc > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=n_proc, process_id=pid,
                               local_device_ids=None)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from theory.engine import train as engine  # noqa: E402
from theory.engine.keys import Keys  # noqa: E402
from theory.engine.sweep import sweep  # noqa: E402


def run(key, *, lr, run_id=0, steps=64):
    k_init, k_data = jax.random.split(key)
    A = jnp.linspace(0.5, 2.0, 4)                                         # (4,)
    opt = engine.make_optimizer(engine.OptimizerConfig("adam"), lr, steps)
    w, tr = engine.train(k_data, jax.random.normal(k_init, (4,)),
                         lambda w, b: 0.5 * jnp.sum((A * w - b) ** 2),
                         lambda k: 1.0 + 0.1 * jax.random.normal(k, (4,)), opt, steps=steps, log_every=8,
                         run_id=run_id)
    return w, tr.loss


keys = Keys(0).sub("distributed").runs(8)
w, loss = sweep(run, keys, lr=jnp.linspace(0.01, 0.1, 8))
print(f"process {jax.process_index()}/{jax.process_count()}: {jax.device_count()} devices, "
      f"{jax.local_device_count()} local", flush=True)
if jax.process_index() == 0:
    np.savez(out, w=np.asarray(w), loss=np.asarray(loss), devices=jax.device_count())
