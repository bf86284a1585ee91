"""What a rerun of the workflow will keep and what it will recompute: a config against the shards
already on disk.

Adding grid values (a width, a weight scale) only adds grid points: their shards are new, the
finished ones are kept. Changing what every shard of a study depends on (the seed, an inner axis
such as the skip list, a setting of the study alone such as escape's max_steps) makes Snakemake
recompute all of the study's shards (their command lines change): that is said before the run
starts. Changing the samples of shard 0 (shard_size, or
samples below shard_size) would re-split finished work and recompute all of it; that is refused,
with what to do instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svperturb.results import io
from svperturb.studies import StudyConfig, get_study, grid_points


def compare_with_existing_shards(results: str | Path, studies: Mapping[str, StudyConfig],
                                 seed: int) -> tuple[list[str], list[str]]:
    """(problems, notes) for the shards under <results>/shards: problems refuse the run, notes
    say which studies will be recomputed and why. Shard 0 of every grid point has the same sample
    range, seed, inner axes and study settings, so one is read per study: the first configured
    point's that exists."""
    problems, notes = [], []
    for name, study in studies.items():
        module = get_study(name)
        folder = Path(results) / "shards" / name
        if not folder.is_dir():
            continue
        found = next(((shard, point) for point in grid_points(name, study.grid)
                      if (shard := folder / io.point_path(point, module.AXES) / "shard-0000.h5")
                      .exists()), None)
        if found is None:
            continue
        shard, point = found
        try:
            attrs = io.read_attrs(shard)
        except OSError:
            continue  # unreadable: the aggregate step names it
        count = sum(1 for _ in folder.rglob("shard-*.h5"))
        old, first = (attrs.get("sample_start"), attrs.get("sample_stop")), study.shard_range(0)
        if old != first:
            problems.append(
                f"studies.{name}.shard_size: the {count} shards in {folder} were split with shard 0 "
                f"= samples [{old[0]}, {old[1]}) (e.g. {shard}); this config makes it [{first[0]}, "
                f"{first[1]}) (shard_size {study.shard_size}, samples {study.samples}), which would "
                f"recompute all of them. Refused: set shard_size back to {old[1] - old[0]}; or "
                f"give this config its own results folder (the key `results`, e.g. results: "
                f"{Path(results) / 'new'}), which keeps these shards; or delete {folder} to "
                f"recompute the study from scratch.")
            continue
        stored: dict[str, Any] = json.loads(attrs.get("point_json", "{}"))
        now = {"seed": seed, **{axis: point[axis] for axis in module.INNER}, **study.settings}
        changed = [f"{key} ({stored.get(key)} -> {value})" for key, value in now.items()
                   if stored.get(key) != value]
        if changed:
            notes.append(f"study {name}: the config changes {', '.join(changed)} for the {count} "
                         f"shards in {folder}: all of them will be recomputed (to keep them, give this config "
                         f"its own results folder, the key `results`)")
    return problems, notes

