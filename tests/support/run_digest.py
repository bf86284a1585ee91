"""A run's numbers in a few lines: per merged dataset its shape and summary statistics, and every
claim's verdict, so that a change of layout can be checked to change no number.

`tests/data/tiny-digest.json` holds the digest of `tests/data/tiny.yaml` run by the code before the
merged files became self-describing. To write it again from a finished run:

    python tests/support/run_digest.py <run>/results tests/data/tiny-digest.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np


def dataset_summary(values: np.ndarray) -> dict:
    """Shape, count of NaN, and sum, sum of |x|, min and max of the rest (as float64)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return {"shape": list(values.shape), "nan": int(values.size)}
    return {"shape": list(values.shape), "nan": int(values.size - finite.size),
            "sum": float(finite.sum()), "abs_sum": float(np.abs(finite).sum()),
            "min": float(finite.min()), "max": float(finite.max())}


def run_digest(results: Path) -> dict:
    """{"datasets": {"<study>/<group>/<dataset>": summary}, "verdicts": {claim id: verdict}} of
    the merged files and claims.json under `results`. Only numeric datasets of the grid points'
    groups count (dimension scales and other additions of a later format are the new file's)."""
    datasets = {}
    for path in sorted(results.glob("*.h5")):
        with h5py.File(path, "r") as fh:
            def visit(name: str, obj, study=path.stem) -> None:
                if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biuf":
                    datasets[f"{study}/{name}"] = dataset_summary(obj[()])
            fh.visititems(visit)
    claims = json.loads((results / "claims.json").read_text())
    return {"datasets": datasets, "verdicts": {str(c["id"]): c["verdict"] for c in claims}}


def differences(reference: dict, now: dict, rtol: float = 1e-9) -> list[str]:
    """Every dataset of `reference` that `now` lacks or whose summary differs beyond float64
    rounding of the sums (rtol relative to the sum of |x|), and every verdict that changed."""
    problems = []
    for key, old in reference["datasets"].items():
        new = now["datasets"].get(key)
        if new is None:
            problems.append(f"{key}: missing")
            continue
        if new["shape"] != old["shape"] or new["nan"] != old["nan"]:
            problems.append(f"{key}: shape/NaN {old['shape']}/{old['nan']} -> "
                            f"{new['shape']}/{new['nan']}")
            continue
        scale = max(old.get("abs_sum", 0.0), 1e-300)
        for stat in ("sum", "abs_sum", "min", "max"):
            if stat in old and abs(new[stat] - old[stat]) > rtol * scale:
                problems.append(f"{key}: {stat} {old[stat]!r} -> {new[stat]!r}")
    problems += [f"claim {i}: {verdict} -> {now['verdicts'].get(i)}"
                 for i, verdict in reference["verdicts"].items() if now["verdicts"].get(i) != verdict]
    return problems


if __name__ == "__main__":
    results, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.write_text(json.dumps(run_digest(results), indent=1, sort_keys=True) + "\n")
