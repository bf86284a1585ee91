"""Every study runs on a device array module: the data cross between host and device only where
the code says so (xp.asarray up, backend.to_host down), as CuPy demands .

The CuPy stand-in (tests/support/cupy_stand_in) refuses what CuPy refuses and computes with NumPy;
built under a name other than cupy (`shim`), it takes NumPy's routes, so each study's results on
it equal its NumPy results bit for bit; on a machine with a usable GPU the same studies also run
on CuPy itself and must agree with NumPy to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from support import cupy_stand_in
from support.cupy_stand_in import HostDeviceMixing
from support.devices import CUPY
from svperturb.linalg import engine
from svperturb.linalg.backend import to_host
from svperturb.studies import get_study

# The stand-in as an array module named otherwise than cupy: NumPy's routes, no kernels, no device
# draws, and CuPy's wall between host and device.
shim = cupy_stand_in.build(name="device_shim")

# --- the shim refuses what CuPy refuses ---------------------------------------------------------


@pytest.mark.parametrize("mix", [
    lambda d, h: d + h,
    lambda d, h: h * d,
    lambda d, h: np.minimum(d, h),
    lambda d, h: shim.concatenate([d, h]),
    lambda d, h: np.concatenate([d, h]),
    lambda d, h: shim.where(d > 0, d, h),
    lambda d, h: np.asarray(d),
    lambda d, h: np.linalg.svd(np.asarray(d)),
    lambda d, h: d.__setitem__(slice(None), h),
])
def test_the_shim_refuses_host_arrays_meeting_device_arrays(mix):
    device, host = shim.asarray(np.ones(3)), np.ones(3)
    with pytest.raises(HostDeviceMixing):
        mix(device, host)


def test_a_kernel_launch_refuses_host_arrays_as_cupy_does(monkeypatch):
    """A compiled kernel's arguments are device arrays and NumPy scalars; CuPy refuses a NumPy
    array among them, and so does the stand-in as `cupy`."""
    cupy = cupy_stand_in.install(monkeypatch)
    seen = []
    kernel = cupy.RawKernel("probe", lambda grid, block, args, shared_mem=0: seen.append(args))
    kernel((1,), (1,), (cupy.zeros(3), np.int32(3)))
    assert isinstance(seen[0][0], np.ndarray) and seen[0][1] == 3  # the kernel gets NumPy's array
    with pytest.raises(HostDeviceMixing):
        kernel((1,), (1,), (np.zeros(3), np.int32(3)))


def test_the_shim_computes_with_numpy_and_crosses_only_when_asked():
    host = np.arange(6.0).reshape(2, 3)
    device = shim.asarray(host)
    result = np.sqrt(device * 2.0 + np.float64(1.0)).sum(axis=1)  # scalars pass, as in CuPy
    assert isinstance(result, shim.ndarray)
    np.testing.assert_array_equal(to_host(result), np.sqrt(host * 2.0 + 1.0).sum(axis=1))
    assert float(device[1, 2]) == 5.0 and to_host(device[np.array([1])]).shape == (1, 3)
    assert isinstance(shim.linalg.svd(device, compute_uv=False), shim.ndarray)


# --- each study on a device array module --------------------------------------------------------


def paired_results(name, point, xp):
    """(key, NumPy's array, xp's array brought to the host) for every dataset of a study's samples
    [3, 70) on NumPy and on `xp`, the keys checked equal; also whether each xp result was a
    device array."""
    study = get_study(name)
    host = dict(zip(("per", "spectra"), study.simulate(point, 3, 70, np)))
    other = dict(zip(("per", "spectra"), study.simulate(point, 3, 70, xp)))
    pairs, on_device = [], set()
    for part in ("per", "spectra"):
        assert other[part].keys() == host[part].keys()
        for key, values in host[part].items():
            if isinstance(other[part][key], shim.ndarray):
                on_device.add(key)
            pairs.append((key, to_host(values), to_host(other[part][key])))
    return pairs, on_device


# Studies whose docstrings say they compute on the CPU whatever the backend (tiny matrices, and
# nonsymmetric eigenvalues, which cuSOLVER lacks): their results come back as host arrays.
HOST_STUDIES = {"rho_paths", "toy_network"}


def test_each_study_runs_on_a_device_module_and_equals_numpy_bit_for_bit(tiny_study):
    name, point = tiny_study
    pairs, on_device = paired_results(name, point, shim)
    # the others compute on the device: every result comes back from it (none silently on the host)
    assert on_device == (set() if name in HOST_STUDIES else {key for key, _, _ in pairs})
    for key, reference, device in pairs:
        np.testing.assert_array_equal(device, reference, err_msg=f"{name}: {key}")


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
def test_each_study_on_cupy_agrees_with_numpy_to_rounding(tiny_study):
    """cuSOLVER and LAPACK round differently: floats agree to 1e-9 relative to each dataset's
    largest value; counts (violations of inequalities, ranks) exactly."""
    name, point = tiny_study
    for key, reference, gpu in paired_results(name, point, CUPY)[0]:
        if reference.dtype.kind == "f":
            scale = np.nanmax(np.abs(reference)) if np.isfinite(reference).any() else 1.0
            np.testing.assert_allclose(gpu, reference, rtol=0, atol=1e-9 * max(scale, 1e-300),
                                       err_msg=f"{name}: {key}")
        else:
            np.testing.assert_array_equal(gpu, reference, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("augmented_widths", [None, (2, 200)])
@pytest.mark.parametrize("n", [5, 33])
def test_the_engine_runs_on_a_device_module(n, augmented_widths, monkeypatch):
    """Every route, and the augmented fallback CuPy takes from n = 33 (forced: the shim is named
    as NumPy), bit-identical to NumPy."""
    monkeypatch.setitem(engine.AUGMENTED_WIDTHS, "numpy", augmented_widths)
    a = np.random.default_rng(n).standard_normal((40, n, n))
    for route in engine.ROUTES:
        host = engine.singular_values(a, np, route=route)
        device = engine.singular_values(shim.asarray(a), shim, route=route)
        for field in ("values", "fallback", "augmented", "absolute_error"):
            np.testing.assert_array_equal(to_host(getattr(device, field)), getattr(host, field),
                                          err_msg=f"{route}: {field}")
    host = engine.extreme_singular_values(a, np)
    device = engine.extreme_singular_values(shim.asarray(a), shim)
    for field in ("s1", "s_min", "s_star", "route", "s_min_error"):
        np.testing.assert_array_equal(to_host(getattr(device, field)), getattr(host, field), err_msg=field)


def test_unit_variance_on_the_gram_route_runs_on_a_device_module(monkeypatch):
    """The route CuPy takes for s_1 and s_* from n = 33 (forced here: the shim is named as NumPy),
    with spectra for the first samples only: no host array meets a device array, and the results
    equal NumPy's on the same route bit for bit."""
    monkeypatch.setitem(engine.EXTREMES_GRAM_FROM_WIDTH, "numpy", 33)
    study = get_study("unit_variance")
    point = {"distribution": "gaussian", "width": 40, "seed": 6}
    host = study.simulate(point, 0, 30, np, spectra_stop=3)
    device = study.simulate(point, 0, 30, shim, spectra_stop=3)
    for part, other in zip(host, device):
        for key, values in part.items():
            assert isinstance(other[key], shim.ndarray), key
            np.testing.assert_array_equal(to_host(other[key]), values, err_msg=key)


def assert_study_on_the_shim_equals_numpy(name, point, start=0, stop=24):
    """Every dataset of the study's samples comes back from the device, equal to NumPy's bit for
    bit (on whatever routes the engine's tables give NumPy)."""
    study = get_study(name)
    host = study.simulate(point, start, stop, np)
    device = study.simulate(point, start, stop, shim)
    for part, other in zip(host, device):
        for key, values in part.items():
            assert isinstance(other[key], shim.ndarray), key
            np.testing.assert_array_equal(to_host(other[key]), values, err_msg=key)


@pytest.mark.parametrize("eta", [-1.0, 0.0])
def test_convnet_vs_resnet_on_the_fast_routes_runs_on_a_device_module(cupy_routes, eta):
    """The routes CuPy takes for ConvNet and ResNet layers from n = 33 (forced here), with the
    identity check's proven errors: no host array meets a device array, and the results equal
    NumPy's on the same routes bit for bit."""
    assert_study_on_the_shim_equals_numpy("convnet_vs_resnet", {
        "distribution": "gaussian", "width": 36, "weight_scale": 2.0, "activation_slope": eta,
        "activity": 0.5, "skip": [0.0, 1.0], "seed": 6})


def test_hard_bounds_on_the_fast_routes_runs_on_a_device_module(cupy_routes):
    """The routes CuPy takes from n = 33 (forced here), with the proven errors in every violation
    flag: bit-identical to NumPy on the same routes, nothing mixed."""
    assert_study_on_the_shim_equals_numpy("hard_bounds", {
        "width": 36, "entry_bound": 0.9, "weight_pattern": "uniform", "depth": 2,
        "activation_slope": 0.0, "activity": 0.5, "seed": 6})


# Points at n = 40, where CuPy takes the engine's fast routes and NumPy LAPACK: s_1 within 1e-12
# and s_* within 1e-10 of NumPy's (kappa within their sum), counts (ranks, violations) equal.
FAST_ROUTE_POINTS = {
    "convnet_vs_resnet": [
        {"distribution": "gaussian", "width": 40, "weight_scale": 2.0, "activation_slope": eta,
         "activity": 0.5, "skip": [0.0, 1.0]} for eta in (-1.0, 0.0)],
    "hard_bounds": [
        {"width": 40, "entry_bound": 0.99, "weight_pattern": pattern, "depth": 2,
         "activation_slope": eta, "activity": 0.5}
        for pattern, eta in (("constant", -1.0), ("uniform", 0.0), ("rank_one", 0.5))],
}
FAST_ROUTE_TOLERANCES = {"s1": 1e-12, "s1_M": 1e-12, "s1_Mo": 1e-12, "s1_A": 1e-12,
                         "spectral_ratio": 1e-12, "s_star": 1e-10, "sn_M": 1e-10,
                         "s_star_A": 1e-10, "kappa": 2e-10, "kappa_M": 2e-10, "kappa_A": 2e-10}


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
@pytest.mark.parametrize(("name", "index"), [(name, i) for name, points in FAST_ROUTE_POINTS.items()
                                             for i in range(len(points))])
def test_studies_on_the_gpus_fast_routes_agree_with_numpy_within_the_contract(name, index):
    point = {**FAST_ROUTE_POINTS[name][index], "seed": 11}
    for key, reference, gpu in paired_results(name, point, CUPY)[0]:
        if key in FAST_ROUTE_TOLERANCES:
            np.testing.assert_allclose(gpu, reference, rtol=FAST_ROUTE_TOLERANCES[key], atol=0,
                                       err_msg=f"{name}: {key}")
        elif key.startswith(("violations", "rank_")) or key == "rank":
            np.testing.assert_array_equal(gpu, reference, err_msg=f"{name}: {key}")
            assert not key.startswith("violations") or not gpu.any(), f"{name}: {key}"


def test_the_augmented_route_with_inverse_iteration_runs_on_a_device_module(
        cupy_routes, inverse_iteration_calls):
    """W1 alone at n = 100 on the routes CuPy takes (forced): the augmented route, and inverse
    iteration for the s_n it cannot prove, bit-identical to NumPy on the same routes."""
    from svperturb.sampling.ensembles import unit_variance_matrices, weight_std

    a = unit_variance_matrices(4, "engine-test", 100, "gaussian", 0, 24) * weight_std(100, 2.0)
    host = engine.singular_values(a, np, well_conditioned=False)
    device = engine.singular_values(shim.asarray(a), shim, well_conditioned=False)
    assert host.augmented.all() and inverse_iteration_calls[0] == inverse_iteration_calls[1] > 0
    for field in ("values", "fallback", "augmented", "absolute_error", "square_error"):
        np.testing.assert_array_equal(to_host(getattr(device, field)), getattr(host, field),
                                      err_msg=field)
