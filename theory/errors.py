"""Errors the CLI turns into one clear line and an exit code (theory/cli.py).

    SandboxError      bad input or a missing prerequisite: exit 2, nothing written
    DivergenceError   a diverged run (non-finite or exploding loss in training, or a non-finite
                      prediction or measurement of a part): exit 2, nothing written
    any other error   a bug: exit 3, one line; `sandbox --debug` shows the traceback
"""


class SandboxError(Exception):
    """Bad input or a missing prerequisite: reported as one line, exit code 2, nothing written."""


class DivergenceError(SandboxError):
    """A run diverged (training loss, or a part's prediction or measurement, not finite); the message
    names where (run, step and hyperparameters, or part and key)."""
