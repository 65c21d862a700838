"""The benchmark cases: one module per workload, every engine's version side by side."""
