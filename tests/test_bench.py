"""`svperturb bench`: one row per method and width with rate and accuracy, the naive baselines
measured in the same run, the end-to-end rows, and the JSON copy."""

from __future__ import annotations

import json

from support import cupy_stand_in
from svperturb.cli import main


def test_bench_prints_and_saves_the_table(tmp_path, capsys):
    output = tmp_path / "bench.json"
    assert main(["bench", "--backend", "numpy", "--widths", "5", "20", "--repeats", "1",
                 "--scale", "0.002", "--threads", "2", "--end-to-end-width", "8",
                 "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads(output.read_text())
    methods = {row["method"] for row in saved["routes"]}
    assert {"numpy.linalg.svd (naive)", "numpy.linalg.svd (naive)/f32", "engine lapack",
            "engine gram", "engine auto", "engine gram x2 threads"} <= methods
    for row in saved["routes"]:
        assert row["matrices_per_s"] > 0
        if row["dtype"] == "float64":  # the contract, measured against LAPACK gesvd
            assert row["max_rel_err_s1"] <= 1e-12 and row["max_rel_err_s_min"] <= 1e-10
        else:  # float32 is not accurate enough: the bench shows by how much
            assert row["max_rel_err_s_min"] > 1e-10
    assert [r["route"] for r in saved["end_to_end"]] == ["naive", "auto", "auto"]
    assert printed.count("| engine gram |") == 2 and "samples/s" in printed
    # the host draws (a GPU job's input) on one and on all threads; no GPU here: no copy row
    assert [(r["step"], r["n"], r["threads"]) for r in saved["draws"]] == [
        ("draw", 5, 1), ("draw", 5, 2), ("draw", 20, 1), ("draw", 20, 2)]
    assert all(r["matrices_per_s"] > 0 for r in saved["draws"]) and "drawn on the host" in printed


def test_bench_measures_the_extremes_route_on_unit_variance_matrices(tmp_path, capsys):
    output = tmp_path / "bench.json"
    assert main(["bench", "--backend", "numpy", "--widths", "5", "33", "--repeats", "1",
                 "--scale", "0.002", "--threads", "1", "--end-to-end-width", "0",
                 "--output", str(output)]) == 0
    saved = json.loads(output.read_text())["extremes"]
    assert [(r["method"], r["n"]) for r in saved] == [
        ("numpy.linalg.svd (naive)", 5), ("engine extremes", 5),
        ("numpy.linalg.svd (naive)", 33), ("engine extremes", 33)]
    for row in saved:
        assert row["matrices_per_s"] > 0
        assert row["max_rel_err_s1"] <= 1e-12 and row["max_rel_err_s_min"] <= 1e-10
        assert 0 <= row["by_gram"] + row["by_inverse_iteration"] <= 1
    assert [r["auto_takes"] for r in saved] == ["lapack"] * 4  # on NumPy (engine.py)
    printed = capsys.readouterr().out
    assert "proved by Gram" in printed and "takes: n = 5 lapack, n = 33 lapack" in printed
    # where the route's time goes: each of its library calls alone, against the whole route
    stages = json.loads(output.read_text())["stages"]
    assert [r["n"] for r in stages] == [5] * 9 + [33] * 9
    assert {r["stage"] for r in stages} >= {"eigvalsh of A^T A", "batched inverse",
                                            "Gram product A^T A", "library SVD (naive)"}
    for n in (5, 33):
        route, *calls = [r for r in stages if r["n"] == n]
        assert route["stage"].startswith("engine.extremes") and route["share_of_route"] == 1.0
        assert all(r["matrices_per_s"] > 0 and r["share_of_route"] > 0 for r in calls)
    assert "| eigvalsh of A^T A | 33 |" in printed


def test_a_method_too_slow_for_the_batch_is_timed_on_a_prefix_of_it():
    """The GPU's naive SVD loops over matrices above n = 32: it gets as many as fit in `seconds`;
    a kernel whose cost hardly grows with the batch gets the whole batch."""
    import time

    import numpy as np

    from svperturb.bench import PROBE, timed_prefix

    stack = np.zeros((1000, 2, 2))

    def slow(part):  # at least 1 ms per matrix
        time.sleep(1e-3 * len(part))
        return len(part)

    count, best, result = timed_prefix(slow, stack, np, repeats=1, seconds=0.2)
    assert PROBE <= count <= 200 and result == count and best >= 1e-3 * count
    count, _, result = timed_prefix(lambda part: len(part), stack, np, repeats=1, seconds=0.2)
    assert count == result == 1000

    def kernel(part):  # a GPU kernel, one thread per matrix: 40 ms up to 500 matrices, then linear
        time.sleep(0.04 * max(1.0, len(part) / 500))
        return len(part)

    count, _, result = timed_prefix(kernel, stack, np, repeats=1, seconds=0.2)
    assert count == result == 1000  # not 0.2 / (40 ms / 8) = 40 matrices, as a probe of 8 says


def test_a_gpu_batch_fits_half_the_free_device_memory():
    """100,000 matrices of n = 100 (the work-sized GPU batch) would need 128 GB in the heaviest
    route; the batch is cut to what fits half the free memory, after the pool's cached blocks are
    released."""
    from svperturb.bench import DEVICE_COPIES, GPU_CAP, batch_size

    free = 80 * 2**30
    cupy = cupy_stand_in.build(free_bytes=free, total_bytes=free)
    assert batch_size(100, 1.0, cupy) == free // 2 // (DEVICE_COPIES * 100 * 100 * 8) < GPU_CAP
    assert cupy.get_default_memory_pool().released
    assert batch_size(5, 1.0, cupy) == GPU_CAP  # small matrices: the work cap
    assert batch_size(100) == 300  # the CPU's: work only, no device


def test_on_cupys_routes_the_stages_time_the_eigenvalue_kernel_beside_the_librarys(cupy_routes):
    """Where the engine calls svperturb's eigenvalue kernel (from n = 33 on CuPy; its C build
    here), the stages table times it beside the library's eigvalsh, on the same Gram matrices."""
    import numpy as np

    from svperturb.bench import _extremes_calls

    a = np.random.default_rng(0).standard_normal((6, 33, 33))
    calls = _extremes_calls(a, np)
    kernel, library = calls["eigenvalues of A^T A by svperturb's kernel"], calls["eigvalsh of A^T A"]
    np.testing.assert_allclose(kernel(a)[:, ::-1], library(a), rtol=0,
                               atol=2 * 33 * np.finfo(float).eps * np.abs(library(a)).max())
    assert "eigenvalues of A^T A by svperturb's kernel" not in _extremes_calls(a[:, :32, :32], np)


def test_where_the_kernels_run_the_routes_table_times_them_beside_the_librarys_calls(cupy_routes):
    """svperturb's kernels (their C build here) and the library calls they replace, raw: the Gram
    route's eigenvalues within its error bound (kappa ~ 2 here), the augmented ones within 4n eps s_1
    relative to s_*."""
    import numpy as np

    from svperturb.bench import bench_routes

    rows = {r["method"]: r for r in bench_routes([33], np, workers=1, repeats=1, scale=0.02,
                                                 seconds=0.5) if r["method"].startswith("raw")}
    assert sorted(rows) == ["raw augmented, library eigvalsh", "raw augmented, svperturb kernel",
                            "raw gram, library eigvalsh", "raw gram, svperturb kernel"]
    for row in rows.values():
        assert row["matrices_per_s"] > 0 and row["max_rel_err_s1"] <= 1e-12
        assert row["max_rel_err_s_min"] <= 1e-10
    # outside the kernels' widths (here n = 32; on a GPU also n = 1000, one thread per 8 MB
    # matrix) the engine does not call them, and the bench does not time them
    assert not [r for r in bench_routes([32], np, workers=1, repeats=1, scale=0.02, seconds=0.5)
                if r["method"].startswith("raw")]


def test_the_kernel_sweep_times_both_kernels_against_the_library_per_width_and_batch(cupy_routes):
    """kernel_sweep (the kernels' C build here): every method at every batch that fits, or a
    prefix of it and no larger batch; a table with one row per width and batch, and a suggestion."""
    import numpy as np

    from svperturb.bench import (
        SWEEP_METHODS,
        format_kernel_sweep,
        kernel_sweep,
        suggested_kernel_table,
    )

    rows = kernel_sweep([33, 36], [4, 16], np, repeats=1, seconds=30.0)
    no_tile = [m for m in SWEEP_METHODS if not m.endswith("streaming kernel")]  # no GPU: no tile
    assert [(r["n"], r["method"], r["matrices"]) for r in rows] == [
        (n, method, count) for n in (33, 36) for method in no_tile for count in (4, 16)]
    assert all(r["matrices_per_s"] > 0 for r in rows)
    printed = format_kernel_sweep(rows, "cpu")
    assert "| 33 | 16 |" in printed and "| 36 | 4 |" in printed
    assert "suggested engine.EIGENVALUE_KERNEL['cupy'] = " in printed
    table = suggested_kernel_table(rows)
    assert table is None or (33 <= table[0] <= table[1] <= 36 and table[2] in (4, 16))


def test_the_suggested_widest_tile_stops_at_the_first_width_where_a_tile_loses():
    from svperturb.bench import suggested_widest_tile

    def rows_for(n, tile, streaming):
        return [{"n": n, "method": f"{kind}, {who}", "matrices": 4096, "matrices_per_s": rate}
                for kind in ("gram", "augmented")
                for who, rate in (("kernel", tile), ("streaming kernel", streaming))]

    rows = rows_for(50, 9e5, 3e5) + rows_for(100, 5e5, 2e5) + rows_for(150, 1e5, 2e5)
    assert suggested_widest_tile(rows) == 100
    assert suggested_widest_tile(rows_for(50, 1e5, 2e5)) == 0
    mixed = rows_for(50, 9e5, 3e5)
    mixed[-2]["matrices_per_s"] = 1e5  # the augmented route's tile loses
    assert suggested_widest_tile(mixed) == 0
    assert suggested_widest_tile([r for r in rows if "streaming" not in r["method"]]) == \
        "no tile timed"
    # the augmented route's streaming kernel not timed at n = 50 (its sweep cut short): no claim
    assert suggested_widest_tile([r for r in rows if r["method"] != "augmented, streaming kernel"
                                  or r["n"] != 50]) == 0


def test_the_suggested_device_draws_widest_stops_where_the_host_and_its_copy_are_faster():
    """The device's rate against the host's on its most threads and the copy in turn:
    1 / (1 / draw + 1 / copy)."""
    from svperturb.bench import DEVICE_DRAWS, suggested_device_draws_widest

    def rows_for(n, device, host, copy=1e6):
        return [{"step": "draw", "n": n, "threads": 1, "matrices_per_s": host / 16},
                {"step": "draw", "n": n, "threads": 16, "matrices_per_s": host},
                {"step": "copy to device", "n": n, "threads": 1, "matrices_per_s": copy},
                {"step": DEVICE_DRAWS, "n": n, "threads": 64, "matrices_per_s": device}]

    rows = rows_for(100, 1e6, 1e5) + rows_for(200, 4e4, 3e4) + rows_for(400, 5e3, 8e3)
    assert suggested_device_draws_widest(rows) == 200
    # 6e4 beats the host's 1e5 draws only against their copy too: 1 / (1/1e5 + 1/1e5) = 5e4
    assert suggested_device_draws_widest(rows_for(100, 6e4, 1e5, copy=1e5)) == 100
    assert suggested_device_draws_widest(rows_for(100, 4e4, 1e5, copy=1e5)) is None
    assert suggested_device_draws_widest([r for r in rows if r["step"] != DEVICE_DRAWS]) is None


def test_the_suggested_kernel_table_is_the_first_winning_run_of_widths_and_its_fewest_matrices():
    """Hand case: the kernels win from n = 50 to 200 (not at 33, where the library's batched Jacobi
    is fast, nor at 400) from 2,048 matrices on; one thread per matrix loses on 512."""
    from svperturb.bench import suggested_kernel_table

    def rows_for(n, kernel, library):  # rates at 512 and 2048 matrices
        return [{"n": n, "method": f"{kind}, {who}", "matrices": count, "matrices_per_s": rate}
                for kind in ("gram", "augmented") for who, rates in (("kernel", kernel),
                                                                     ("library", library))
                for count, rate in zip((512, 2048), rates)]

    rows = (rows_for(33, (1e4, 4e4), (9e4, 9e4)) + rows_for(50, (1e4, 4e4), (3e4, 3e4))
            + rows_for(100, (5e3, 2e4), (8e3, 8e3)) + rows_for(200, (1e3, 4e3), (2e3, 2e3))
            + rows_for(400, (1e2, 4e2), (5e2, 5e2)))
    assert suggested_kernel_table(rows) == (50, 200, 2048)
    # a library timed on a prefix of 100 matrices only counts at that prefix's rate
    slow = [r for r in rows_for(100, (5e3, 2e4), (0, 0)) if "kernel" in r["method"]]
    slow += [{"n": 100, "method": f"{kind}, library", "matrices": 100, "matrices_per_s": 300.0}
             for kind in ("gram", "augmented")]
    assert suggested_kernel_table(slow) == (100, 100, 512)
    losing = rows_for(100, (1e3, 2e3), (8e3, 8e3))
    assert suggested_kernel_table(losing) is None


def test_the_kernel_sweep_needs_the_kernels_and_says_so_before_computing(caplog, capsys):
    from svperturb.cli import main

    assert main(["bench", "--kernel-sweep", "--backend", "numpy"]) == 2
    assert capsys.readouterr().out == ""  # no table: nothing was computed
    said = caplog.text
    assert "--kernel-sweep" in said and "CuPy" in said and "backend here: numpy" in said



def test_bench_times_the_sharpness_routes(tmp_path, capsys):
    output = tmp_path / "bench.json"
    assert main(["bench", "--sharpness", "--backend", "numpy", "--widths", "2", "3",
                 "--depths", "2", "3", "--repeats", "1", "--output", str(output)]) == 0
    rows = json.loads(output.read_text())["sharpness"]
    assert [(r["d"], r["depth"]) for r in rows] == [(2, 2), (2, 3), (3, 2), (3, 3)]
    for row in rows:
        assert set(row) == {"d", "depth", "batch", "dense_ms", "lanczos_ms", "lanczos_steps",
                            "max_rel_diff", "max_rel_bound"}
        assert row["dense_ms"] > 0 and row["lanczos_ms"] > 0
        assert row["max_rel_diff"] <= 1e-10 and row["max_rel_bound"] <= 1e-10
    assert "| Lanczos ms |" in capsys.readouterr().out
