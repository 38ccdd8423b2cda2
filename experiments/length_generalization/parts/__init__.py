"""The parts of `length_generalization`, one module each: sampler, even_pairs, nope, table."""
