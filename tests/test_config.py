"""config.py: the default config validates; every bad config is refused before anything runs, with a
message naming the key, the value found and what is allowed; r <= 1 is legal but outside the theory."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import yaml

from svperturb.config import (
    ConfigError,
    TheoryWarning,
    load_config,
    study_configs,
    validate_config,
)
from svperturb.studies import STUDIES

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"

MINIMAL = {
    "seed": 1,
    "grid": {
        "distribution": ["gaussian"],
        "width": [4, 8],
        "weight_scale": [2],
        "activation_slope": [-1, 0],
        "activity": [0.5],
        "skip": [0, 1],
    },
    "studies": {"resnet_layer": {"samples": 10, "shard_size": 5}},
}


def with_change(change):
    config = copy.deepcopy(MINIMAL)
    change(config)
    return config


def refused(config) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


# --- valid configurations --------------------------------------------------------------------------


def test_the_default_config_validates_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load_config(DEFAULT_CONFIG)
    # every study runs by default, so that every claim gets a verdict
    assert set(config["studies"]) == set(STUDIES)
    studies = study_configs(config)
    for study in studies.values():
        assert study.shard_size <= study.samples
    # the per-study override replaces the global axis values
    assert studies["convnet_vs_resnet"].grid["skip"] == [0, 1]
    assert studies["convnet_vs_resnet"].grid["width"] == config["grid"]["width"]


def test_minimal_config_gets_the_schema_defaults():
    """Including an absent `verdicts:` block: the workflow's fit rule reads CONFIG["verdicts"]."""
    config = validate_config(copy.deepcopy(MINIMAL))
    assert config["backend"] == "auto"
    assert config["keep_spectra"] == 16
    assert config["job_memory_mb"] == 1000
    assert config["verdicts"]["confidence"] == 0.95
    assert config["results"] == "results"
    assert "verdicts" not in MINIMAL  # the caller's mapping is not modified


def test_study_shards_cover_the_samples_exactly_once():
    config = validate_config(with_change(
        lambda c: c["studies"].update(unit_variance={"samples": 23, "shard_size": 5})))
    study = study_configs(config)["unit_variance"]
    assert study.n_shards == 5
    ranges = [study.shard_range(k) for k in range(study.n_shards)]
    assert ranges == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    with pytest.raises(ValueError, match="shard"):
        study.shard_range(5)


def test_optional_axes_get_their_defaults_and_overrides_win():
    config = validate_config(with_change(
        lambda c: c["studies"].update(hard_bounds={"samples": 4, "shard_size": 4,
                                                   "grid": {"depth": [1, 2]}})))
    assert config["grid"]["depth"] == [1]
    assert config["grid"]["weight_pattern"] == ["uniform"]
    studies = study_configs(config)
    assert studies["hard_bounds"].grid["depth"] == [1, 2]
    assert studies["resnet_layer"].grid["theta"] == [4.5]
    assert "depth" not in MINIMAL["grid"]  # the caller's mapping is not modified


def test_skip_points_make_an_equally_spaced_rho_path_holding_both_ends():
    config = validate_config(with_change(
        lambda c: c["studies"].update(rho_paths={"samples": 4, "shard_size": 4, "skip_points": 201})))
    skip = study_configs(config)["rho_paths"].grid["skip"]
    assert len(skip) == 201 and skip[0] == 0 and skip[-1] == 1
    assert skip[100] == 0.5 and skip[1] == 0.005
    # spacing is exact to the 12 digits kept, so the values survive a trip through text
    assert all(abs((b - a) - 0.005) < 1e-12 for a, b in zip(skip, skip[1:]))
    assert all(float(format(v, ".12g")) == v for v in skip)


# --- refused configurations: the message names the key and what is allowed -------------------------


BAD_CONFIGS = {
    "unknown top-level key": (
        lambda c: c.update(seeds=2),
        ["seeds", "unknown key", "did you mean 'seed'", "allowed keys", "studies"]),
    "misspelled study": (
        lambda c: c["studies"].update(resnet_layers=c["studies"].pop("resnet_layer")),
        ["studies.resnet_layers", "did you mean 'resnet_layer'", "unit_variance",
         "convnet_vs_resnet"]),
    "misspelled grid axis": (
        lambda c: c["grid"].update(widht=[3]),
        ["grid.widht", "did you mean 'width'"]),
    "width below 2": (
        lambda c: c["grid"].update(width=[1, 8]),
        ["grid.width[0]", "got 1", ">= 2"]),
    "weight_scale zero": (
        lambda c: c["grid"].update(weight_scale=[0]),
        ["grid.weight_scale[0]", "got 0", "> 0"]),
    "weight_scale negative": (
        lambda c: c["grid"].update(weight_scale=[2, -1]),
        ["grid.weight_scale[1]", "got -1", "> 0"]),
    "activation_slope above 1": (
        lambda c: c["grid"].update(activation_slope=[1.5]),
        ["grid.activation_slope[0]", "1.5", "<= 1"]),
    "activation_slope below -1": (
        lambda c: c["grid"].update(activation_slope=[-2]),
        ["grid.activation_slope[0]", "-2", ">= -1"]),
    "activity above 1": (
        lambda c: c["grid"].update(activity=[1.2]),
        ["grid.activity[0]", "1.2", "<= 1"]),
    "skip above 1": (
        lambda c: c["grid"].update(skip=[0, 1, 2]),
        ["grid.skip[2]", "<= 1"]),
    "unknown distribution": (
        lambda c: c["grid"].update(distribution=["gaussian", "cauchy"]),
        ["grid.distribution[1]", "cauchy", '"gaussian"', '"uniform"']),
    "empty grid list": (
        lambda c: c["grid"].update(width=[]),
        ["grid.width", "at least 1"]),
    "repeated grid value": (
        lambda c: c["grid"].update(width=[4, 4]),
        ["grid.width", "without repeated values"]),
    "samples zero": (
        lambda c: c["studies"]["resnet_layer"].update(samples=0, shard_size=0),
        ["studies.resnet_layer.samples", "got 0", ">= 1"]),
    "shard_size above samples": (
        lambda c: c["studies"]["resnet_layer"].update(shard_size=11),
        ["studies.resnet_layer.shard_size", "got 11", "at most", "samples = 10"]),
    "grid axis not a list": (
        lambda c: c["grid"].update(width="10"),
        ["grid.width", '"10"', "type array"]),
    "samples not an integer": (
        lambda c: c["studies"]["resnet_layer"].update(samples=10.5),
        ["studies.resnet_layer.samples", "10.5", "type integer"]),
    "seed a boolean": (
        lambda c: c.update(seed=True),
        ["seed", "true", "type integer"]),
    "seed negative": (
        lambda c: c.update(seed=-1),
        ["seed", "got -1", ">= 0"]),
    "unknown backend": (
        lambda c: c.update(backend="tpu"),
        ["backend", "tpu", '"auto"', '"numpy"', '"cupy"']),
    "missing seed": (
        lambda c: c.pop("seed"),
        ["seed: missing required key"]),
    "missing grid axis": (
        lambda c: c["grid"].pop("skip"),
        ["grid.skip: missing required key"]),
    "no study": (
        lambda c: c.update(studies={}),
        ["studies", "at least 1", "unit_variance"]),
    "study without shard_size": (
        lambda c: c["studies"]["resnet_layer"].pop("shard_size"),
        ["studies.resnet_layer.shard_size: missing required key"]),
    "resnet study without the ResNet": (
        lambda c: c["grid"].update(skip=[0, 0.5]),
        ["grid.skip", "containing 0 (ConvNet) and 1 (ResNet)", "resnet_layer"]),
    "study override without the ConvNet": (
        lambda c: c["studies"]["resnet_layer"].update(grid={"skip": [0.5, 1]}),
        ["studies.resnet_layer.grid.skip", "containing 0"]),
    "study override with a bad width": (
        lambda c: c["studies"]["resnet_layer"].update(grid={"width": [1]}),
        ["studies.resnet_layer.grid.width[0]", ">= 2"]),
    "job memory too small": (
        lambda c: c.update(job_memory_mb=100),
        ["job_memory_mb", "got 100", ">= 300"]),
    "depth zero": (
        lambda c: c["grid"].update(depth=[0, 2]),
        ["grid.depth[0]", "got 0", ">= 1"]),
    "entry bound at 1/n": (
        lambda c: c["grid"].update(entry_bound=[0.5, 1]),
        ["grid.entry_bound[1]", "got 1", "< 1"]),
    "unknown weight pattern": (
        lambda c: c["grid"].update(weight_pattern=["uniform", "diagonal"]),
        ["grid.weight_pattern[1]", "diagonal", '"constant"', '"rank_one"', '"random_signs"']),
    "batch size zero": (
        lambda c: c["grid"].update(batch_size=[0]),
        ["grid.batch_size[0]", ">= 1"]),
    "theta zero": (
        lambda c: c["grid"].update(theta=[0]),
        ["grid.theta[0]", "> 0"]),
    "one skip point": (
        lambda c: c["studies"]["resnet_layer"].update(skip_points=1),
        ["studies.resnet_layer.skip_points", "got 1", ">= 2"]),
    "confidence at one half": (
        lambda c: c.update(verdicts={"confidence": 0.5}),
        ["verdicts.confidence", "0.5", "> 0.5"]),
    "skip negative": (
        lambda c: c["grid"].update(skip=[-0.5, 0, 1]),
        ["grid.skip[0]", "got -0.5", ">= 0"]),
    "samples negative": (
        lambda c: c["studies"]["resnet_layer"].update(samples=-10),
        ["studies.resnet_layer.samples", "got -10", ">= 1"]),
    "misspelled study key": (
        lambda c: c["studies"]["resnet_layer"].update(shardsize=5),
        ["studies.resnet_layer.shardsize", "did you mean 'shard_size'"]),
    "skip_points and a skip list in one study": (
        lambda c: c["studies"]["resnet_layer"].update(skip_points=11, grid={"skip": [0, 1]}),
        ["studies.resnet_layer", "both skip_points (11) and grid.skip ([0, 1])", "one of them"]),
    "GPUs reserved for the NumPy backend": (
        lambda c: c.update(backend="numpy", resources={"gpus": 1}),
        ["resources.gpus", "got 1 with backend: numpy", "allowed: 0"]),
    "negative device memory cap": (
        lambda c: c.update(resources={"device_memory_mb": -512}),
        ["resources.device_memory_mb", "got -512", ">= 0"]),
    "unknown study": (
        lambda c: c["studies"].update(random_walk={"samples": 10, "shard_size": 10}),
        ["studies.random_walk", "unknown key", "resnet_layer"]),
    "a results folder with a space": (
        lambda c: c.update(results="my results"),
        ['results: got "my results"', "without spaces or quotes"]),
    "a results folder that is not a string": (
        lambda c: c.update(results=["results"]),
        ["results", "type string"]),
    "width one outside the sharpness study": (
        lambda c: c["grid"].update(width=[1, 5]),
        ["grid.width[0]: got 1, used by resnet_layer", ">= 2 (width 1 only for sharpness, escape)"]),
    "the sharpness study at depth one": (
        lambda c: c["studies"].update(sharpness={"samples": 4, "shard_size": 4,
                                                 "grid": {"width": [1, 3], "depth": [1, 2]}}),
        ["studies.sharpness.grid.depth: got [1, 2]", "depths >= 2"]),
    "the escape study at depth one": (
        lambda c: c["studies"].update(escape={"samples": 4, "shard_size": 4,
                                              "grid": {"width": [1], "depth": [1, 2]}}),
        ["studies.escape.grid.depth: got [1, 2]", "depths >= 2"]),
    "the deep linear L2 study at depth one": (
        lambda c: c["studies"].update(deep_linear_l2={"samples": 4, "shard_size": 4,
                                                      "grid": {"width": [8], "depth": [1, 2]}}),
        ["studies.deep_linear_l2.grid.depth: got [1, 2]", "depths >= 2 (the number of layers)"]),
    "a deep linear network narrower than its teacher": (
        lambda c: c["studies"].update(deep_linear_dynamics={"samples": 4, "shard_size": 4,
                                                            "grid": {"width": [4, 16]}}),
        ["studies.deep_linear_dynamics.grid.width: got [4, 16]",
         "widths >= 5 (the teacher's dimension)"]),
    "an escape setting in another study": (
        lambda c: c["studies"]["resnet_layer"].update(max_steps=100),
        ["studies.resnet_layer.max_steps: unknown key (a setting of study escape alone)",
         "allowed keys: grid, samples, shard_size, skip_points"]),
    "a reversed step factor interval": (
        lambda c: c["studies"].update(escape={"samples": 4, "shard_size": 4, "step_factor": [1.2, 0.8],
                                              "grid": {"width": [3], "depth": [2]}}),
        ["studies.escape.step_factor: got [1.2, 0.8]", "[low, high] with low < high"]),
    "three step factors": (
        lambda c: c["studies"].update(escape={"samples": 4, "shard_size": 4,
                                              "step_factor": [0.8, 1, 1.2],
                                              "grid": {"width": [3], "depth": [2]}}),
        ["studies.escape.step_factor", "at most 2 item(s)"]),
    "no escape steps": (
        lambda c: c["studies"].update(escape={"samples": 4, "shard_size": 4, "max_steps": 0,
                                              "grid": {"width": [3], "depth": [2]}}),
        ["studies.escape.max_steps", "got 0", ">= 1"]),
    "an escape factor of one": (
        lambda c: c["studies"].update(escape={"samples": 4, "shard_size": 4, "escape_factor": 1,
                                              "grid": {"width": [3], "depth": [2]}}),
        ["studies.escape.escape_factor", "got 1", "> 1"]),
    "a start far from the minimizer": (
        lambda c: c["studies"].update(escape={"samples": 4, "shard_size": 4, "start_distance": 0.5,
                                              "grid": {"width": [3], "depth": [2]}}),
        ["studies.escape.start_distance", "got 0.5", "<= 0.01"]),
    "unknown target": (
        lambda c: c["grid"].update(target=["lognormal"]),
        ["grid.target[0]", "lognormal", '"gaussian"', '"ill_conditioned"']),
    "negative imbalance": (
        lambda c: c["grid"].update(imbalance=[-1]),
        ["grid.imbalance[0]", ">= 0"]),
    "too few bootstrap replicates": (
        lambda c: c.update(verdicts={"bootstrap": 10}),
        ["verdicts.bootstrap", "got 10", ">= 50"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_refused_naming_the_key_and_what_is_allowed(case):
    change, fragments = BAD_CONFIGS[case]
    message = refused(with_change(change))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_every_problem_is_listed_in_one_message():
    def change(c):
        c["grid"]["width"] = [1]
        c["backend"] = "tpu"
        c["seeds"] = 3

    message = refused(with_change(change))
    for key in ("grid.width[0]", "backend", "seeds"):
        assert key in message


def test_a_config_that_is_not_a_mapping_is_refused():
    assert "mapping" in refused([1, 2, 3])


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_invalid_yaml_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seed: [1, 2\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(path)


def test_a_config_file_is_validated_like_a_mapping(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(with_change(lambda c: c["grid"].update(width=[1]))))
    with pytest.raises(ConfigError, match=r"grid\.width\[0\]"):
        load_config(path)


# --- outside the theory, but computable ---------------------------------------------------------


@pytest.mark.parametrize("r", [1, 0.5])
def test_weight_scale_at_most_one_warns_that_the_theory_needs_r_above_one(r):
    config = with_change(lambda c: c["grid"].update(weight_scale=[2, r]))
    with pytest.warns(TheoryWarning, match="weight_scale.*r > 1"):
        validated = validate_config(config)
    assert validated["grid"]["weight_scale"] == [2, r]


def test_weight_scale_at_most_one_in_a_study_override_warns_too():
    config = with_change(lambda c: c["studies"]["resnet_layer"].update(grid={"weight_scale": [0.8]}))
    with pytest.warns(TheoryWarning, match=r"studies\.resnet_layer\.grid\.weight_scale.*r > 1"):
        validate_config(config)


def test_weight_scale_just_above_one_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_config(with_change(lambda c: c["grid"].update(weight_scale=[1.01])))


# --- the escape study's own settings -----------------------------------------------------------


def test_the_escape_study_takes_width_one_and_its_settings_default_and_are_typed():
    config = validate_config(with_change(lambda c: c["studies"].update(
        escape={"samples": 4, "shard_size": 4, "max_steps": 50, "escape_factor": 10,
                "grid": {"width": [1, 3], "depth": [2, 3]}})))
    assert config["studies"]["escape"]["step_factor"] == [0.8, 1.2]
    studies = study_configs(config)
    assert studies["escape"].settings == {"step_factor": [0.8, 1.2], "max_steps": 50,
                                          "start_distance": 1e-9, "escape_factor": 10.0,
                                          "stay_factor": 1000.0}
    assert isinstance(studies["escape"].settings["escape_factor"], float)
    assert studies["resnet_layer"].settings == {}


def test_settings_from_the_command_line_equal_the_configs():
    from svperturb.config import parse_study_settings, settings_arguments

    settings = study_configs(load_config(DEFAULT_CONFIG))["escape"].settings
    text = settings_arguments(settings)
    assert text.startswith("--settings ")
    assert parse_study_settings("escape", text.split()[1:]) == settings
    assert settings_arguments({}) == ""
    with pytest.raises(ConfigError, match="KEY a setting of study escape"):
        parse_study_settings("escape", ["steps=10"])
    with pytest.raises(ConfigError, match="a setting of study sharpness: none"):
        parse_study_settings("sharpness", ["max_steps=10"])
    with pytest.raises(ConfigError, match="step_factor='0.8,x' is not a comma-separated list"):
        parse_study_settings("escape", ["step_factor=0.8,x"])
    with pytest.raises(ConfigError, match="--settings.step_factor: got .1.2, 0.8.; allowed: "
                                          r"\[low, high\] with low < high"):
        parse_study_settings("escape", ["step_factor=1.2,0.8"])
