"""The parts of `composition`, one module each (predict / measure / judge)."""
