"""Which array library computes the spectra, and on what device.

Every numerical routine takes the array module `xp` it should use, so NumPy and (later) CuPy share
one code path. This version ships the NumPy backend; `auto` resolves to it with one log line.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from types import ModuleType

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("auto", "numpy")


@dataclass(frozen=True)
class Backend:
    """The chosen array module and a description of the device it runs on."""

    name: str
    xp: ModuleType
    device: str


def _cpu_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu: {model}, {os.cpu_count()} logical cores"


def select_backend(requested: str = "auto") -> Backend:
    """Resolve `requested` (one of BACKENDS) to a usable backend and log the choice once."""
    if requested not in BACKENDS:
        raise ValueError(f"backend: got {requested!r}; allowed: {', '.join(BACKENDS)}")
    backend = Backend("numpy", np, _cpu_description())
    if requested == "auto":
        log.info("backend auto -> numpy (no GPU backend in this version); device %s", backend.device)
    else:
        log.info("backend numpy; device %s", backend.device)
    return backend
