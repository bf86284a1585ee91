"""Configuration: load, validate against the JSON schema, fill defaults, resolve each study's grid.

Validation happens before any job is scheduled; every error names the key, the value found and
what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import json
import tempfile
import warnings
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from svperturb.studies import StudyConfig, get_study

GRID_AXES = ("distribution", "width", "weight_scale", "activation_slope", "activity", "skip",
             "depth", "entry_bound", "weight_pattern", "batch_size", "theta", "target", "imbalance",
             "activation", "init_std", "state", "teacher_spectrum", "init_exponent", "l2")
# Optional grid axes and their values when the top-level grid leaves them out (the schema cannot
# hold these defaults: its grid definition is shared with the per-study overrides).
GRID_DEFAULTS = {"depth": [1], "entry_bound": [0.5], "weight_pattern": ["uniform"],
                 "batch_size": [1], "theta": [4.5], "target": ["gaussian"], "imbalance": [0],
                 "activation": ["tanh"], "init_std": [0.5], "state": ["initialization"],
                 "teacher_spectrum": ["linear"], "init_exponent": [1.0], "l2": [0.1]}
# Studies whose grid may hold width 1 (the scalar factorization), and whose depth must be >= 2.
FACTORIZATION_STUDIES = ("sharpness", "escape")
# Deep linear network studies: depth >= 2, width at least the teacher's dimension (TEACHER_DIMENSION).
DEEP_LINEAR_STUDIES = ("deep_linear_dynamics", "deep_linear_l2")
# Studies that compare a ConvNet (rho = 0) with a ResNet (rho = 1): their skip axis must hold both.
COMPARES_SKIP_ENDPOINTS = ("resnet_layer", "convnet_vs_resnet", "relu_layer", "depth", "data_factor",
                           "rho_paths", "toy_network")


class ConfigError(ValueError):
    """A configuration that cannot be run; the message lists every problem found."""


class TheoryWarning(UserWarning):
    """The computation is valid, but the paper's theory does not cover this setting."""


@lru_cache(maxsize=1)
def config_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) shipped with the package."""
    text = resources.files("svperturb").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _key_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _allowed(error: jsonschema.ValidationError) -> str:
    kw, val, schema = error.validator, error.validator_value, error.schema
    if kw == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in val)
    if kw == "type":
        return f"a value of type {val}"
    if kw == "minimum":
        return f"a number >= {val}"
    if kw == "exclusiveMinimum":
        return f"a number > {val}"
    if kw == "maximum":
        return f"a number <= {val}"
    if kw == "exclusiveMaximum":
        return f"a number < {val}"
    if kw == "minItems":
        return f"a list of at least {val} item(s)"
    if kw == "maxItems":
        return f"a list of at most {val} item(s)"
    if kw == "uniqueItems":
        return "a list without repeated values"
    if kw == "pattern":
        return schema.get("title", f"a string matching {val}")
    if kw == "minProperties":
        return f"a mapping with at least {val} key(s): " + ", ".join(schema.get("properties", {}))
    return f"a value satisfying {kw}={val!r}"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        lines = []
        for key in extra:
            hint = difflib.get_close_matches(key, allowed, n=1)
            owners = [name for name in _schema_studies() if key in study_settings_schema(name)]
            guess = (f" (a setting of study {', '.join(owners)} alone)" if owners
                     else f" (did you mean '{hint[0]}'?)" if hint else "")
            prefix = f"{where}." if error.absolute_path else ""
            lines.append(f"{prefix}{key}: unknown key{guess}; allowed keys: {', '.join(allowed)}")
        return "\n".join(lines)
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        prefix = f"{where}." if error.absolute_path else ""
        return "\n".join(f"{prefix}{k}: missing required key" for k in missing)
    return f"{where}: got {json.dumps(error.instance)}; allowed: {_allowed(error)}"


def _schema_studies() -> list[str]:
    return list(config_schema()["properties"]["studies"]["properties"])


def study_settings_schema(name: str) -> dict[str, dict]:
    """The settings only study `name` takes: {key: its schema, with its default} for the keys of its
    schema beyond those of every study ($defs/study: samples, shard_size, grid, skip_points), e.g.
    escape's step_factor; {} for a study that has none."""
    schema = config_schema()
    studies = schema["properties"]["studies"]["properties"]
    if name not in studies:
        return {}
    definition = schema["$defs"][studies[name]["$ref"].split("/")[-1]]
    common = schema["$defs"]["study"]["properties"]
    return {key: sub for key, sub in definition["properties"].items() if key not in common}


def study_settings(name: str, given: dict[str, Any], where: str) -> dict[str, Any]:
    """Study `name`'s settings: `given` (from a config, or a command line) checked against the
    schema, the left-out ones at their defaults, numbers as float and integers as int (so that a
    setting compares and hashes alike whichever way it came). ConfigError names `where`.key, the
    value and what is allowed."""
    settings, problems = _settings_and_problems(name, given, where)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def _settings_and_problems(name: str, given: dict[str, Any],
                           where: str) -> tuple[dict[str, Any], list[str]]:
    """study_settings, and what is wrong with `given` (one line each) instead of raising."""
    schema = study_settings_schema(name)
    problems = [f"{where}.{key}: not a setting of study {name}; its settings: "
                f"{', '.join(schema) or 'none'}" for key in given if key not in schema]
    settings = {}
    for key, sub in schema.items():
        value = copy.deepcopy(given.get(key, sub["default"]))
        error = next(iter(jsonschema.Draft202012Validator(sub).iter_errors(value)), None)
        if error is not None:
            problems.append(f"{where}.{key}{_key_path(error.absolute_path) if error.absolute_path else ''}"
                            f": got {json.dumps(value)}; allowed: {_allowed(error)}")
            continue
        settings[key] = _typed(sub, value)
        if _is_interval(sub) and not settings[key][0] < settings[key][1]:
            problems.append(f"{where}.{key}: got {json.dumps(value)}; allowed: [low, high] with "
                            "low < high")
    return settings, problems


def _is_interval(schema: dict) -> bool:
    """A setting [low, high] (two numbers)."""
    return schema.get("type") == "array" and schema.get("minItems") == schema.get("maxItems") == 2


def _typed(schema: dict, value: Any) -> Any:
    if schema.get("type") == "array":
        return [_typed(schema.get("items", {}), v) for v in value]
    if schema.get("type") == "number":
        return float(value)
    if schema.get("type") == "integer":
        return int(value)
    return value


def parse_study_settings(name: str, items: list[str]) -> dict[str, Any]:
    """Study `name`'s settings from command-line KEY=VALUE items (a list: comma-separated
    numbers), the others at their defaults (study_settings)."""
    schema = study_settings_schema(name)
    given: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in schema:
            raise ConfigError(f"--settings: got {item!r}; allowed: KEY=VALUE with KEY a setting of "
                              f"study {name}: {', '.join(schema) or 'none'}")
        kind = schema[key].get("type")
        try:
            if kind == "array":
                given[key] = [float(part) for part in text.split(",")]
            else:
                given[key] = int(text) if kind == "integer" else float(text)
        except ValueError:
            raise ConfigError(f"--settings: {key}={text!r} is not "
                              f"{'a comma-separated list of numbers' if kind == 'array' else f'a {kind}'}"
                              ) from None
    return study_settings(name, given, "--settings")


def settings_arguments(settings: dict[str, Any]) -> str:
    """`--settings KEY=VALUE ...` for the command line (simulate, aggregate): floats written so that
    they read back the same (repr); "" where there are none."""
    def text(value):
        if isinstance(value, list):
            return ",".join(text(v) for v in value)
        return repr(value) if isinstance(value, float) else str(value)

    return ("--settings " + " ".join(f"{k}={text(v)}" for k, v in settings.items())
            if settings else "")


def _fully_defaulted_mapping(schema: dict) -> bool:
    """An object schema all of whose properties have defaults (so leaving it out means 'all defaults')."""
    properties = schema.get("properties", {})
    return (schema.get("type") == "object" and bool(properties)
            and all("default" in sub for sub in properties.values()))


def _fill_defaults(schema: dict, instance: Any, root: dict) -> Any:
    """Insert schema defaults for absent keys (top level and nested mappings)."""
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        schema = {**root["$defs"][ref], **{k: v for k, v in schema.items() if k != "$ref"}}
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            elif key not in instance and _fully_defaulted_mapping(sub):
                instance[key] = {}  # e.g. an absent `verdicts:` block: every one of its keys has a default
            if key in instance:
                instance[key] = _fill_defaults(sub, instance[key], root)
    return instance


def _width_problems(config: dict[str, Any]) -> list[str]:
    """Width 1 (the scalar factorization) where a study other than FACTORIZATION_STUDIES would
    get it: from the top-level grid (unless the study overrides width) or its own override.
    Reads the raw config defensively: the schema reports what is malformed."""
    def ones(grid) -> list[int]:
        widths = grid.get("width") if isinstance(grid, dict) else None
        return [i for i, w in enumerate(widths) if w == 1] if isinstance(widths, list) else []

    studies = config.get("studies") if isinstance(config.get("studies"), dict) else {}
    others = {name: study.get("grid", {}) if isinstance(study, dict) else {}
              for name, study in studies.items() if name not in FACTORIZATION_STUDIES}
    allowed = f"allowed: an integer >= 2 (width 1 only for {', '.join(FACTORIZATION_STUDIES)})"
    users = sorted(name for name, grid in others.items() if not (isinstance(grid, dict) and "width" in grid))
    problems = [f"grid.width[{i}]: got 1, used by {', '.join(users)}; {allowed}"
                for i in ones(config.get("grid")) if users]
    for name, grid in others.items():
        problems += [f"studies.{name}.grid.width[{i}]: got 1; {allowed}" for i in ones(grid)]
    return problems


def _least_grid_values(name: str) -> dict[str, tuple[int, str]]:
    """The least value a study's grid axes may hold, and why: {axis: (least, reason)}."""
    if name in FACTORIZATION_STUDIES:
        return {"depth": (2, "the number of factors")}
    if name in DEEP_LINEAR_STUDIES:
        return {"depth": (2, "the number of layers"),
                "width": (get_study(name).TEACHER_DIMENSION, "the teacher's dimension")}
    return {}


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate `config` (a mapping) and return a copy with defaults filled in.

    Raises ConfigError listing every problem (key, value, allowed values); emits TheoryWarning
    where the computation is valid but outside the paper's assumptions.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"(top level): got {type(config).__name__}; allowed: a mapping of keys")
    schema = config_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.path)), e.message))
    narrow = _width_problems(config)
    if errors or narrow:
        lines = sorted({_describe(e) for e in errors} | set(narrow))
        raise ConfigError("invalid configuration:\n  " + "\n  ".join("\n".join(lines).splitlines()))
    config = _fill_defaults(schema, copy.deepcopy(config), schema)
    for axis, values in GRID_DEFAULTS.items():
        config["grid"].setdefault(axis, list(values))
    problems = []
    for name, study in config["studies"].items():
        if study["shard_size"] > study["samples"]:
            problems.append(
                f"studies.{name}.shard_size: got {study['shard_size']}; allowed: at most "
                f"studies.{name}.samples = {study['samples']}"
            )
        grid = {**config["grid"], **study.get("grid", {})}
        problems += _settings_and_problems(name, {k: study[k] for k in study_settings_schema(name)},
                                           f"studies.{name}")[1]
        for axis, (least, reason) in _least_grid_values(name).items():
            if min(grid[axis]) < least:
                key = f"studies.{name}.grid" if axis in study.get("grid", {}) else "grid"
                problems.append(f"{key}.{axis}: got {grid[axis]} for study {name}; allowed: "
                                f"{axis}s >= {least} ({reason})")
        if "skip_points" in study:
            if "skip" in study.get("grid", {}):
                problems.append(
                    f"studies.{name}: got both skip_points ({study['skip_points']}) and grid.skip "
                    f"({study['grid']['skip']}); allowed: one of them (skip_points replaces the "
                    "skip axis by equally spaced values in [0, 1])")
            continue  # equally spaced in [0, 1]: holds both ends
        if name in COMPARES_SKIP_ENDPOINTS and not {0, 1} <= set(grid["skip"]):
            key = f"studies.{name}.grid.skip" if "skip" in study.get("grid", {}) else "grid.skip"
            problems.append(
                f"{key}: got {grid['skip']}; allowed: a list containing 0 (ConvNet) and 1 (ResNet), "
                f"which study {name} compares"
            )
    if config["backend"] == "numpy" and config["resources"]["gpus"] > 0:
        problems.append(
            f"resources.gpus: got {config['resources']['gpus']} with backend: numpy, which never "
            "uses a GPU; allowed: 0, or backend auto or cupy")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    scales = [("grid.weight_scale", config["grid"]["weight_scale"])] + [
        (f"studies.{name}.grid.weight_scale", study["grid"]["weight_scale"])
        for name, study in config["studies"].items() if "weight_scale" in study.get("grid", {})
    ]
    for key, values in scales:
        for r in values:
            if r <= 1:
                warnings.warn(
                    f"{key}: {r} <= 1; the paper's bounds (Lemma 36, Theorem 38) assume r > 1. "
                    "The statistics are still computed.",
                    TheoryWarning,
                    stacklevel=2,
                )
    return config


# Folders of a checkout that hold the program, its history or Snakemake's state: never results.
CHECKOUT_FOLDERS = ("src", "workflow", "config", "tests", "docs", "scripts", ".git", ".snakemake")


def check_results_folder(results: str, workdir: str | Path, checkout: str | Path | None = None) -> Path:
    """The `results` folder resolved against `workdir`, once it can hold a run's results.

    Raises ConfigError, before any job, when it is a file, lies inside the installed package or
    inside (or is, or holds) the checkout's program folders, or cannot be written. Creates nothing.
    """
    folder = (Path(workdir) / results).resolve()
    key = f"results: got {json.dumps(results)}"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{key}, which is a file ({folder}); allowed: a folder, new or existing")
    protected = [Path(__file__).resolve().parent]
    if checkout is not None:
        root = Path(checkout).resolve()
        protected += [root / name for name in CHECKOUT_FOLDERS]
        if folder == root or root.is_relative_to(folder):
            raise ConfigError(f"{key} ({folder}), which holds the checkout {root}; allowed: a "
                              f"folder of its own, e.g. results/<name>")
    for place in protected:
        if folder.is_relative_to(place):
            raise ConfigError(f"{key} ({folder}), inside {place}, which holds the program; allowed: "
                              "a folder outside it, e.g. results/<name> in the checkout")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{key}: {existing} is a file, so {folder} cannot be created; allowed: "
                          "a folder whose parents are folders")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"{key}: {existing} cannot be written ({exc.strerror}), so the run could "
                          "not store its results; allowed: a folder you can write") from None
    return folder


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return validate_config(data)


def study_configs(config: dict[str, Any]) -> dict[str, StudyConfig]:
    """Each configured study with its resolved grid (global grid overlaid by the study's own)."""
    out = {}
    for name, study in config["studies"].items():
        grid = {axis: list(config["grid"][axis]) for axis in GRID_AXES}
        grid.update({axis: list(v) for axis, v in study.get("grid", {}).items()})
        if "skip_points" in study:
            grid["skip"] = skip_path(study["skip_points"])
        settings = study_settings(name, {k: study[k] for k in study_settings_schema(name)},
                                  f"studies.{name}")
        out[name] = StudyConfig(name, study["samples"], study["shard_size"], grid, settings)
    return out


def skip_path(points: int) -> list[float]:
    """`points` equally spaced skip coefficients in [0, 1], rounded to 12 digits so that they
    survive a round trip through text (command lines, HDF5 attributes) unchanged."""
    return [round(k / (points - 1), 12) for k in range(points)]
