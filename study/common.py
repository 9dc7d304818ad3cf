"""Small helpers shared by the study parts: CSV/JSON writing and a headless matplotlib."""

import csv
import json
import os

import numpy as np

__all__ = ["write_csv", "write_json", "pyplot"]


def write_csv(path, rows):
    """Write a list of dicts (same keys, in order) as CSV; floats keep 6 significant digits."""
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, (float, np.floating)) else v)
                        for k, v in r.items()})


def write_json(path, obj):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=float)


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (the study runs headless)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt
