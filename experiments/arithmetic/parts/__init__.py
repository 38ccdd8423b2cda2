"""The parts of `arithmetic`, one module each: construction (Part 1), completion (Part 2), positions (Part 3)."""
