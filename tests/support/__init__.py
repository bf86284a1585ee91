"""Helpers the tests import (conftest.py keeps the fixtures and hooks):

- devices: CUPY (CuPy where a GPU is usable, the stand-in under SVPERTURB_STAND_IN_GPU=1, else
  None) and take_cupy_routes (NumPy on every route the engine takes on CuPy);
- cupy_stand_in: CuPy on the CPU (NumPy computing behind CuPy's host/device wall, its device
  interface, RawModule launching the kernels' CUDA branch emulated);
- kernel_on_cpu: the GPU kernels built as C, their CUDA branch emulated, NVRTC and ptxas;
- reference: LAPACK's singular values and eigenvalues matrix by matrix, the tests' yardstick;
- studies: a tiny grid point of each study, a study simulated and merged through the CLI, a
  tampered copy of merged results;
- slurm_cluster: a throw-away single-node SLURM cluster;
- run_digest: a run's numbers in a few lines (shapes, summary statistics, verdicts).
"""
