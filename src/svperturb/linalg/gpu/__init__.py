"""svperturb's own batched spectra kernels for the GPU (CUDA source and launchers)."""
