"""What each stored dataset holds: every study's DATASETS table (name -> Dataset), the dimensions
their axes run along, and the per-sample `fault` every study stores.

The merged files copy each entry into its dataset's attributes (`description`, `units`,
`equation`) and attach its axes as dimension scales (docs/data-format.md); `finite` replaces the
studies' former FINITE tuples: a NaN or an infinity there marks a numerical fault
(studies.simulate_range). Spectra are keyed `spectra/<name>`, as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

from svperturb.studies.faults import FAULT_NAMES

DIMENSIONLESS, COUNT, NO_UNITS = "1", "count", ""  # units: CF's "1"; "" for flags, codes, indices


@dataclass(frozen=True)
class Dataset:
    """One stored dataset: what it holds, its axes (names of DIMENSIONS), its units, the paper's
    equation or statement it records ("" where none), whether it is finite for every computable
    sample (largest singular values, whole spectra), and for a categorical dataset its codes
    {code: name}, stored as an HDF5 enum of unsigned bytes (as `fault` is)."""

    description: str
    dims: tuple[str, ...]
    units: str = DIMENSIONLESS
    equation: str = ""
    finite: bool = False
    codes: Mapping[int, str] | None = None


# Axes of the datasets: the sample (always first), then inner axes and statistic axes.
SAMPLE = ("sample",)
PER_SKIP = ("sample", "skip")
PER_THETA = ("sample", "theta")
KEPT_SAMPLES = ("spectrum_sample", "index")  # spectra/: the first keep_spectra samples only
KEPT_SAMPLES_PER_SKIP = ("spectrum_sample", "skip", "index")

# Every dimension: its coordinate's description and units. sample, spectrum_sample: global sample
# indices; skip, theta: the point's sorted inner values; the others: positions 1, 2, ...
DIMENSIONS: dict[str, Dataset] = {
    "sample": Dataset("global index of the sample: its draws depend on this index and the seed "
                      "alone", ("sample",), NO_UNITS),
    "spectrum_sample": Dataset("global index of a sample whose full spectra are stored (the first "
                               "keep_spectra samples)", ("spectrum_sample",), NO_UNITS),
    "skip": Dataset("skip coefficient rho of M(rho) = Mo + rho I, sorted", ("skip",),
                    DIMENSIONLESS, "(45)"),
    "theta": Dataset("theta of Theorem 39 and Corollary 40, whose bounds hold with probability "
                     "at least 1 - 2 exp(-theta^2/2) - P[E], sorted", ("theta",), DIMENSIONLESS,
                     "Theorem 39"),
    "index": Dataset("position i, from 1, in a spectrum of n values, or along an axis of length n, "
                     "in the order the dataset's description gives", ("index",), NO_UNITS),
    "index_ij": Dataset("position, from 1, in a spectrum of n^2 values of an n^2 x n^2 matrix (Q "
                        "(49), A (59)), whose values the paper indexes by pairs (i, j)",
                        ("index_ij",), NO_UNITS),
    "component": Dataset("component j, from 1, of the trained layer's input z", ("component",),
                         NO_UNITS),
    "layer": Dataset("layer i, from 1 (the first factor W_1, applied first) to the depth L",
                     ("layer",), NO_UNITS),
    "row": Dataset("row i, from 1, of a stored matrix", ("row",), NO_UNITS),
    "time": Dataset("position, from 1, on a training run's logarithmic grid of steps (the steps "
                    "themselves: the dataset recorded_steps)", ("time",), NO_UNITS),
    "column": Dataset("column j, from 1, of a stored matrix", ("column",), NO_UNITS),
    "step": Dataset("gradient-descent step t, from 1, of a per-step quantity (step t goes from the "
                    "iterate t - 1 to the iterate t)", ("step",), NO_UNITS),
}

FAULT = Dataset(
    "numerical fault of the sample (HDF5 enum): "
    + ", ".join(f"{code} {name}" for code, name in FAULT_NAMES.items())
    + "; readers leave the faulty samples out of every statistic", SAMPLE, NO_UNITS,
    codes=FAULT_NAMES)


def extremes(symbol: str, definition: str, dims: tuple[str, ...], suffix: str = "",
             equation: str = "", rank: bool = True) -> dict[str, Dataset]:
    """s1<suffix> (finite), s_star<suffix>, kappa<suffix> and, with `rank`, rank<suffix> of the
    matrix `symbol` defined by `definition`; `equation` is what its kappa is about besides (53)."""
    out = {
        f"s1{suffix}": Dataset(f"s_1({symbol}), {definition}", dims, finite=True),
        f"s_star{suffix}": Dataset(f"s_*({symbol}): the smallest singular value above the rank "
                                   f"tolerance n eps s_1, {definition}", dims),
        f"kappa{suffix}": Dataset(f"kappa({symbol}) = s_1 / s_*, {definition}", dims,
                                  equation=", ".join(filter(None, ("(53)", equation)))),
    }
    if rank:
        out[f"rank{suffix}"] = Dataset(f"numerical rank of {symbol}: its singular values above "
                                       f"n eps s_1, {definition}", dims, COUNT)
    return out


def table(study: ModuleType) -> dict[str, Dataset]:
    """Every dataset a study may store: its DATASETS and `fault`."""
    return {**study.DATASETS, "fault": FAULT}


def categorical_datasets(datasets: Mapping[str, Dataset]) -> dict[str, Mapping[int, str]]:
    """{dataset: its codes} of the categorical datasets (`fault`, and entries with codes)."""
    return {name: entry.codes for name, entry in datasets.items() if entry.codes is not None}


def finite_datasets(datasets: Mapping[str, Dataset]) -> tuple[str, ...]:
    """The datasets finite for every computable sample."""
    return tuple(name for name, entry in datasets.items() if entry.finite)
