"""The parts of `rank_growth`, one module each (predict / measure / judge)."""
