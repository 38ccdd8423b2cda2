"""The configuration of `length_generalization`: one frozen dataclass, quick and full presets."""
from __future__ import annotations

import dataclasses

from theory.engine import buckets as length_buckets
from theory.errors import SandboxError
from theory.harness.config import check_fields, require_memory, require_positive
from theory.models import positional, transformer
from theory.models.positional import PEConfig
from theory.tasks import algorithmic


@dataclasses.dataclass(frozen=True)
class Config:
    TOLERANCES = ()                          # no tolerance is a field: every judge threshold is in parts/*.py
    MAY_BE_EMPTY = ("table_tasks",)          # () leaves the table part out (the quick preset)

    task: str = "even_pairs"                 # task of the even_pairs and nope parts
    train_max_len: int = 40                  # N: training lengths 1..N
    steps: int = 4000                        # Adam steps per run (sin/cos is >= 0.99 at length 40 after 2300-3100)
    batch: int = 64                          # sequences per step
    lr: float = 1e-3                         # Adam learning rate
    clip: float = 1.0                        # global-norm gradient clipping
    d_model: int = 64                        # residual width
    n_heads: int = 4                         # attention heads
    n_layers: int = 2                        # blocks
    d_ff: int = 128                          # MLP width
    max_pos: int = 2048                      # L: randomized positions come from {0..L-1}
    per: str = "sequence"                    # randomized positions drawn per "sequence" or "batch"
    mix_lengths: bool = False                # False: one length per step (the paper); True: per sequence
    train_buckets: int = 4                   # training-length buckets (theory/engine/buckets.py); 1 = pad to N
    sweep_chunk: int = 1                     # runs vmapped together, chunks in sequence (0 = all; CPU: 1 is faster)
    eval_lengths: tuple[int, ...] = (5, 10, 20, 30, 40, 60, 80, 100, 150, 200)   # test lengths
    eval_batch: int = 2048                   # test sequences per length (fresh positions each): s.e. 0.011 at chance
    eval_chunk: int = 128                    # sequences per evaluation chunk (memory)
    nope: bool = True                        # train the NoPE causal/non-causal pair (part `nope`)
    nope_lengths: tuple[int, ...] = (20, 30, 40)   # in-distribution lengths of the nope checks
    nope_steps: int = 300                    # Adam steps of the NoPE pair
    sampler_n: int = 40                      # subset size of the sampler part
    sampler_draws: int = 10_000              # draws of the sampler part
    table_tasks: tuple[str, ...] = ()        # tasks of the table part; empty = skip it
    table_pes: tuple[str, ...] = ("sin_cos",)  # deterministic families in the table (each + randomized)
    table_steps: int = 2000                  # steps per table run
    table_batch: int = 32                    # sequences per step in the table (CPU budget; paper 128)
    table_seeds: int = 3                     # seeds per table cell
    table_eval_lengths: tuple[int, ...] = (41, 60, 100, 150, 200)   # table score lengths (paper: 41..500)
    table_in_dist_lengths: tuple[int, ...] = (20, 40)   # in-distribution lengths reported beside the score
    table_eval_batch: int = 512              # test sequences per length in the table (the paper's 512)
    log_every: int = 100                     # training-loss log interval
    seeds: int = 1                           # seeds per variant of the even_pairs and nope parts

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def full(cls) -> "Config":
        return cls(seeds=3,
                   eval_lengths=(5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300, 500),
                   eval_chunk=64,
                   table_tasks=tuple(algorithmic.TASKS), table_seeds=3,
                   table_steps=3000)         # sin/cos leaves its plateau after ~2400 steps (even_pairs)

    @property
    def buckets(self) -> tuple[int, ...]:
        """The training-length buckets: `train_buckets` of equal width ending at train_max_len."""
        return length_buckets.even(self.train_max_len, self.train_buckets)

    @property
    def lengths(self) -> tuple[int, ...]:
        """Test lengths of the even_pairs and nope parts: eval_lengths with the nope lengths added."""
        return tuple(sorted(set(self.eval_lengths) | set(self.nope_lengths if self.nope else ())))

    def validate(self) -> None:
        """Refuse a config this claim cannot run (SandboxError naming the field), before any work.

        Memory (float32, 4 B): the largest allocation is estimated as 4x (gradients, Adam moments,
        temporaries) the activations of one training step, runs x batch x T x a(T) with
        a(T) = n_layers x (8 d_model + 2 d_ff + n_heads x T) values per token, T the padded
        training length and runs = 2 variants x seeds (table: x table_pes x table_seeds), or of one
        evaluation chunk eval_chunk x T x a(T) at the longest test length, or 2x the uniforms the
        randomized positions draw, (runs x batch or sampler_draws) x max_pos."""
        check_fields(self)
        require_positive(self, "train_max_len", "steps", "batch", "lr", "d_model", "n_heads",
                         "n_layers", "max_pos", "eval_lengths", "eval_batch", "eval_chunk",
                         "sampler_n", "sampler_draws", "log_every", "seeds", "table_steps", "nope_steps",
                         "table_seeds", "table_eval_batch", "table_batch", "nope_lengths",
                         "table_eval_lengths", "table_in_dist_lengths", "train_buckets")
        if self.sweep_chunk < 0:
            raise SandboxError(f"sweep_chunk must be >= 0 (0 = every run in one vmap), got {self.sweep_chunk}")
        if self.d_ff < 0 or self.clip < 0:
            raise SandboxError(f"d_ff and clip must be >= 0, got {self.d_ff}, {self.clip}")
        for name, tasks in (("task", (self.task,)), ("table_tasks", self.table_tasks)):
            for t in tasks:
                try:
                    algorithmic.get(t)
                except SandboxError as e:
                    raise SandboxError(f"{name}: {e}") from None
        if len(set(self.table_tasks)) != len(self.table_tasks):
            raise SandboxError(f"table_tasks must not repeat a task (one row per task), got {self.table_tasks}")
        for k in self.table_pes:
            if k not in positional.KINDS or k == "none":
                raise SandboxError(f"table_pes: {k!r} is not a positional encoding with positions; "
                                   f"choose from {positional.KINDS[1:]}")
        if any(s % self.log_every for s in (self.steps, self.table_steps, self.nope_steps)):
            raise SandboxError(f"steps ({self.steps}), nope_steps ({self.nope_steps}) and table_steps "
                               f"({self.table_steps}) must be multiples of log_every ({self.log_every})")
        if self.sampler_n >= self.max_pos:
            raise SandboxError(f"sampler_n ({self.sampler_n}) must be below max_pos ({self.max_pos})")
        if not any(n <= self.train_max_len for n in self.lengths):
            raise SandboxError(f"eval_lengths {self.eval_lengths} need a length within the training range "
                               f"1..{self.train_max_len} (the in-distribution check)")
        longest = max(self.eval_lengths + self.table_eval_lengths)
        for t in (self.task,) + self.table_tasks:
            T = algorithmic.seq_len(algorithmic.get(t), longest)
            if T > self.max_pos:
                raise SandboxError(f"eval_lengths / table_eval_lengths: {t} at length {longest} needs {T} "
                                   f"positions > max_pos={self.max_pos}")
        if not all(0 < n <= self.train_max_len for n in self.table_in_dist_lengths):
            raise SandboxError(f"table_in_dist_lengths {self.table_in_dist_lengths} must lie in the "
                               f"training range 1..{self.train_max_len}")
        if not all(n <= self.train_max_len for n in self.nope_lengths):
            raise SandboxError(f"nope_lengths {self.nope_lengths} must lie in the training range "
                               f"1..{self.train_max_len}")
        PEConfig(per=self.per).validate()
        if self.mix_lengths and self.per == "batch":
            raise SandboxError("mix_lengths=True needs per='sequence' (one position draw per length)")
        task = algorithmic.get(self.task)
        T_train = algorithmic.seq_len(task, self.train_max_len)
        T_eval = algorithmic.seq_len(task, longest)
        per_token = lambda T: self.n_layers * (8 * self.d_model + 2 * self.d_ff + self.n_heads * T)  # noqa: E731
        runs = max(2 * self.seeds, 2 * len(self.table_pes) * self.table_seeds if self.table_tasks else 0)
        batch = max(self.batch, self.table_batch)
        sizes = ("n_layers", "d_model", "d_ff", "n_heads")
        require_memory(self, [
            (("seeds", "table_seeds", "batch", "table_batch", "train_max_len") + sizes,
             4 * 4 * runs * batch * T_train * per_token(T_train), "runs x batch x T x a(T) x 4 B x 4"),
            (("eval_chunk", "eval_lengths", "table_eval_lengths") + sizes,
             4 * 4 * self.eval_chunk * T_eval * per_token(T_eval), "eval_chunk x T x a(T) x 4 B x 4"),
            (("seeds", "table_seeds", "batch", "table_batch", "eval_chunk", "sampler_draws", "max_pos"),
             2 * 4 * max(runs * batch, self.eval_chunk, self.sampler_draws) * self.max_pos,
             "(runs x batch or sampler_draws) x max_pos x 4 B x 2"),
        ])
        self.model(task, "sin_cos").validate()

    def model(self, task: algorithmic.Task, kind: str) -> transformer.TransformerConfig:
        """The transformer of `task` with the deterministic encoding `kind` (runs switch randomization)."""
        return transformer.TransformerConfig(
            vocab=task.vocab, n_classes=task.n_classes, d_model=self.d_model, n_heads=self.n_heads,
            n_layers=self.n_layers, d_ff=self.d_ff,
            pe=PEConfig(kind=kind, max_len=self.max_pos, per=self.per))
