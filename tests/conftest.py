"""The tests' fixtures (their helpers are in tests/support/): a tiny grid point of each study,
NumPy and CuPy as array modules, CuPy's routes taken by NumPy, inverse iteration's calls."""

from __future__ import annotations

import numpy as np
import pytest

from support.devices import CUPY, take_cupy_routes
from support.studies import TINY_POINTS


@pytest.fixture(params=sorted(TINY_POINTS))
def tiny_study(request):
    """(study name, grid point with a seed) for each study."""
    return request.param, {**TINY_POINTS[request.param], "seed": 20220307}


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.skipif(
    CUPY is None, reason="needs CuPy and a usable GPU"))])
def xp(request):
    """NumPy, and CuPy where a GPU is usable: the same test on each array module."""
    return np if request.param == "numpy" else CUPY


@pytest.fixture
def cupy_routes(monkeypatch):
    """take_cupy_routes for the whole test."""
    take_cupy_routes(monkeypatch)


@pytest.fixture
def inverse_iteration_calls(monkeypatch):
    """The stack sizes engine._inverse_iteration is called with, in order."""
    from svperturb.linalg import engine

    calls = []
    real = engine._inverse_iteration
    monkeypatch.setattr(engine, "_inverse_iteration",
                        lambda a, *rest: calls.append(len(a)) or real(a, *rest))
    return calls
