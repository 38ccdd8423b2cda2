"""Errors the CLI turns into one clear line and exit code 2 (bad input, diverging run)."""


class SandboxError(Exception):
    """Bad input or a missing prerequisite: reported as one line, exit code 2, nothing written."""


class DivergenceError(SandboxError):
    """A training run produced a non-finite loss; the message names run, step and hyperparameters."""
