"""The parts of `modular_arithmetic`, one module each (predict / measure / judge)."""
