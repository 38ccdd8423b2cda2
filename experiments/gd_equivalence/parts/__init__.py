"""The parts of claim `gd_equivalence`, one module each (predict, measure, judge, PART)."""
