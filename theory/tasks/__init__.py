"""Synthetic tasks: each a pure function of a JAX PRNG key, with a worked example in its docstring."""
