"""Full spectra are stored for the first keep_spectra samples of a grid point only: the studies
compute them for those (unit_variance takes s_1 and s_* of the others from engine.extremes), and
every per-sample result is what it is when all spectra are computed."""

from __future__ import annotations

import numpy as np
import pytest

from support.reference import reference_singular_values
from svperturb.linalg import engine
from svperturb.sampling.ensembles import unit_variance_matrices
from svperturb.studies import FAULT_ERROR, FAULT_OK, get_study, simulate_range
from svperturb.theory.asymptotics import wishart_centering


def blocks_of(name, point, start, stop, block_size, spectra_stop):
    """simulate_range's blocks, concatenated: (per_sample, spectra)."""
    blocks = []
    simulate_range(name, point, start, stop, block_size, np,
                   lambda offset, per, spectra: blocks.append((offset, per, spectra)), spectra_stop)
    blocks.sort(key=lambda block: block[0])
    per = {key: np.concatenate([b[1][key] for b in blocks]) for key in blocks[0][1]}
    spectra = {key: np.concatenate([b[2][key] for b in blocks]) for key in blocks[0][2]}
    return per, spectra


def test_each_study_keeps_the_spectra_below_spectra_stop_and_changes_no_other_result(tiny_study):
    name, point = tiny_study
    every_per, every_spectra = blocks_of(name, point, 3, 70, 16, None)
    per, spectra = blocks_of(name, point, 3, 70, 16, 25)  # 22 of the 67 samples keep spectra
    assert per.keys() == every_per.keys() and spectra.keys() == every_spectra.keys()
    for key, values in every_per.items():
        np.testing.assert_array_equal(per[key], values, err_msg=key)
    for key, values in every_spectra.items():
        assert len(values) == 67 and len(spectra[key]) == 22
        np.testing.assert_array_equal(spectra[key], values[:22], err_msg=key)


def test_a_range_past_spectra_stop_has_empty_spectra():
    point = {"distribution": "gaussian", "width": 6, "seed": 4}
    per, spectra = blocks_of("unit_variance", point, 10, 30, 8, 5)
    assert len(per["s1"]) == 20
    assert spectra["singular_values"].shape == (0, 6)
    assert spectra["symmetric_eigenvalues"].shape == (0, 6)


def test_unit_variance_computes_whole_spectra_only_for_the_kept_samples(monkeypatch):
    study = get_study("unit_variance")
    point = {"distribution": "uniform", "width": 7, "seed": 2}
    counted = []
    real = engine.extremes
    monkeypatch.setattr(engine, "extremes", lambda a, xp, **kw: counted.append(len(a)) or real(a, xp, **kw))
    per, spectra = study.simulate(point, 10, 50, np, spectra_stop=14)
    assert counted == [36]  # samples 14..49 by their extremes alone
    assert spectra["singular_values"].shape == (4, 7) and len(per["kappa"]) == 40


@pytest.mark.parametrize("n", [33, 100])
def test_unit_variance_on_the_gram_route_meets_the_engines_contract(monkeypatch, n):
    """With the route CuPy takes from n = 33 (Gram + certified inverse iteration) forced on NumPy,
    s_1 and s_n are within 1e-12 and 1e-10 of LAPACK gesvd; kappa within their sum; the
    statistics of s_1 (Y, the ratio) within what that error allows; tau_bar, tau_low, Z and Z~
    untouched."""
    monkeypatch.setitem(engine.EXTREMES_GRAM_FROM_WIDTH, "numpy", 33)
    assert engine.choose_extremes_route(n) == "gram"
    study = get_study("unit_variance")
    point = {"distribution": "gaussian", "width": n, "seed": 9}
    count = 48 if n == 33 else 16
    per, spectra = study.simulate(point, 0, count, np, spectra_stop=2)
    k = unit_variance_matrices(9, "unit_variance", n, "gaussian", 0, count)
    reference = reference_singular_values(k)
    assert np.abs(per["s1"] / reference[:, 0] - 1).max() <= engine.TOLERANCE_S1
    assert np.abs(per["s_min"] / reference[:, -1] - 1).max() <= engine.TOLERANCE_S_MIN
    kappa = reference[:, 0] / reference[:, -1]
    assert np.abs(per["kappa"] / kappa - 1).max() <= engine.TOLERANCE_S1 + 1.01 * engine.TOLERANCE_S_MIN
    lapack, _ = study.simulate(point, 0, count, np)  # every sample's whole spectrum
    for key in ("tau_bar", "tau_low", "Z", "Z_tilde"):
        np.testing.assert_array_equal(per[key], lapack[key], err_msg=key)
    # both s_1 within TOLERANCE_S1 of gesvd's, so within 2 TOLERANCE_S1 (+ rounding) of each other:
    # Y = (s_1^2 - mu) / q (110) moves by 2 s_1^2 / q times that, the ratio by that relatively
    s1_gap = 2.1 * engine.TOLERANCE_S1
    _, q = wishart_centering(n)
    assert np.all(np.abs(per["Y"] - lapack["Y"]) <= 2 * lapack["s1"] ** 2 / q * s1_gap)
    np.testing.assert_allclose(per["ratio"], lapack["ratio"], rtol=s1_gap, atol=0)
    np.testing.assert_array_equal(spectra["singular_values"], np.linalg.svd(k[:2], compute_uv=False))


def test_a_failing_sample_on_either_side_of_spectra_stop_gets_its_rows(monkeypatch):
    """Samples 2 (with a spectrum) and 6 (without) fail in a block [0, 8) with spectra_stop 4: the
    sample-by-sample retry gives them NaN rows, a NaN spectrum row only to sample 2."""
    study = get_study("unit_variance")
    real = study.simulate

    def failing(point, start, stop, xp, **options):
        if any(start <= bad < stop for bad in (2, 6)):
            raise np.linalg.LinAlgError("SVD did not converge")
        return real(point, start, stop, xp, **options)

    monkeypatch.setattr(study, "simulate", failing)
    per, spectra = blocks_of("unit_variance", {"distribution": "gaussian", "width": 5, "seed": 1},
                             0, 8, 8, 4)
    assert per["fault"].tolist() == [FAULT_OK] * 2 + [FAULT_ERROR] + [FAULT_OK] * 3 + [
        FAULT_ERROR, FAULT_OK]
    assert np.isnan(per["s1"][[2, 6]]).all() and np.isfinite(per["s1"][[0, 1, 3, 4, 5, 7]]).all()
    assert spectra["singular_values"].shape == (4, 5)
    assert np.isnan(spectra["singular_values"][2]).all()
    assert np.isfinite(spectra["singular_values"][[0, 1, 3]]).all()


def test_a_study_returning_too_few_spectrum_rows_is_an_error_naming_it(monkeypatch):
    """A study that drops spectra it was asked for would leave rows of zeros in the shard: refused."""
    study = get_study("unit_variance")
    real = study.simulate

    def short(point, start, stop, xp, **options):
        per, spectra = real(point, start, stop, xp, **options)
        return per, {key: values[:1] for key, values in spectra.items()}

    monkeypatch.setattr(study, "simulate", short)
    with pytest.raises(RuntimeError, match=r"unit_variance: spectra/\w+ has 1 rows for samples "
                                           r"\[0, 8\) with spectra_stop 4; expected 4"):
        blocks_of("unit_variance", {"distribution": "gaussian", "width": 5, "seed": 1}, 0, 8, 8, 4)
