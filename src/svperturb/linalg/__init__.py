"""Batched spectra: the array module (NumPy or CuPy), the spectra engine and its GPU kernels."""
