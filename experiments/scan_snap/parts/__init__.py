"""The parts of scan_snap: snap_time and scan (population model), finite_T and fig6 (sampled)."""
