"""What a rerun of the workflow will keep and what it will recompute: a config against the shards
already on disk.

Adding grid values (a width, a weight scale) only adds grid points: their shards are new, the
finished ones are kept. Changing what every shard of a study depends on (the seed, an inner axis
such as the skip list) makes Snakemake recompute all of the study's shards (their command lines
change): that is said before the run starts. Changing the samples of shard 0 (shard_size, or
samples below shard_size) would re-split finished work and recompute all of it; that is refused,
with what to do instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svperturb import io
from svperturb.config import StudyConfig
from svperturb.studies import get_study, grid_points


def compare_with_existing_shards(results: str | Path, studies: Mapping[str, StudyConfig],
                                 seed: int) -> tuple[list[str], list[str]]:
    """(problems, notes) for the shards under <results>/shards: problems refuse the run, notes
    say which studies will be recomputed and why. Reads shard 0 of each configured grid point."""
    problems, notes = [], []
    for name, study in studies.items():
        module = get_study(name)
        folder = Path(results) / "shards" / name
        if not folder.is_dir():
            continue
        first = study.shard_range(0)
        existing = []
        for point in grid_points(name, study.grid):
            shard = folder / io.point_path(point, module.AXES) / "shard-0000.h5"
            if shard.exists():
                try:
                    existing.append((shard, point, io.read_attrs(shard)))
                except OSError:
                    continue  # unreadable: the aggregate step names it
        if not existing:
            continue
        shard, _, attrs = existing[0]
        old = (attrs.get("sample_start"), attrs.get("sample_stop"))
        if old != first:
            count = sum(1 for _ in folder.rglob("shard-*.h5"))
            problems.append(
                f"studies.{name}.shard_size: the {count} shards in {folder} were split with shard 0 "
                f"= samples [{old[0]}, {old[1]}) (e.g. {shard}); this config makes it [{first[0]}, "
                f"{first[1]}) (shard_size {study.shard_size}, samples {study.samples}), which would "
                f"recompute all of them. Refused: set shard_size back to {old[1] - old[0]}, or "
                f"delete {folder} to recompute the study from scratch.")
            continue
        changed = _changed_settings(existing, module.INNER, seed)
        if changed:
            count = sum(1 for _ in folder.rglob("shard-*.h5"))
            notes.append(f"study {name}: the config changes {changed} for the {count} shards in "
                         f"{folder}: all of them will be recomputed")
    return problems, notes


def _changed_settings(existing: list[tuple[Path, dict, dict]], inner: tuple[str, ...],
                      seed: int) -> str:
    """Which settings shared by every shard of a study (seed, inner axes) the config changes."""
    changed = set()
    for _, point, attrs in existing:
        stored: dict[str, Any] = json.loads(attrs.get("point_json", "{}"))
        if stored.get("seed") != seed:
            changed.add(f"seed ({stored.get('seed')} -> {seed})")
        for axis in inner:
            if stored.get(axis) != point[axis]:
                changed.add(f"{axis} ({stored.get(axis)} -> {point[axis]})")
    return ", ".join(sorted(changed))
