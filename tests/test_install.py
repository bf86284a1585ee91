"""What `make` installs: the runtime for running, the test extra on top for testing.

`make run` (and resume, slurm, dryrun, install, clean-results, gpu-wheels) installs svperturb with
its `workflow` and `mpich` extras behind one stamp; `make test` adds the `test` extra to the same
.venv behind a second stamp, which depends on the first. Both are redone when pyproject.toml
changes.

How this is checked, offline and in well under a second:

- The Makefile is read by make itself: `make -n` with VENV in a temporary folder prints the
  commands that a target would run there (a fresh .venv, or one with either stamp), and the tests
  read the `pip install` lines among them. Putting `test` back into the runtime install, or making
  a runtime target depend on the test stamp, fails here.
- What those extras pull is resolved from pyproject.toml (svperturb's own extras expanded), and
  then through the metadata of the distributions installed in this environment (what pip would
  install for the runtime, at these versions).

Letting pip resolve the runtime in a throwaway venv (`pip install --dry-run --report`) would
check the same thing more directly, but it needs the package index on every run, takes many
seconds, and its answer moves with every release on PyPI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
RUNTIME_EXTRAS = {"workflow", "mpich"}
RUNTIME_TARGETS = ["run", "resume", "slurm", "dryrun", "install", "clean-results", "gpu-wheels"]
STAMP, TEST_STAMP = ".installed", ".installed-test"
# what only the tests need; nvidia-* (NVIDIA's compiler wheels) too
TEST_ONLY = {"pytest", "psutil", "xarray", "h5netcdf"}
# conda's names for PyPI's
CONDA_NAMES = {"matplotlib-base": "matplotlib", "snakemake-minimal": "snakemake"}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make_dry_run(venv: Path, *args: str) -> list[str]:
    """The commands `make -n ARGS` would run with VENV=venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VENV"}}
    done = subprocess.run(["make", "--no-print-directory", "-n", *args, f"VENV={venv}"],
                          cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def svperturb_installs(lines: list[str]) -> list[tuple[str, frozenset[str]]]:
    """(what, extras) of each `pip install` of svperturb among make's commands: what is `.` (the
    checkout) or `svperturb` (the one installed, by name)."""
    found = []
    for line in lines:
        if "-m pip install" not in line or "--upgrade pip" in line:
            continue
        match = re.search(r"'(\.|svperturb)\[([^\]]*)\]'", line)
        assert match, f"a pip install of something other than svperturb with extras: {line}"
        found.append((match[1], frozenset(e.strip() for e in match[2].split(","))))
    return found


def venv_with(folder: Path, *stamps: str) -> Path:
    """A stand-in .venv in `folder` holding bin/python and `stamps`, each newer than the one
    before and than pyproject.toml."""
    venv = folder / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    start = max(time.time(), (REPO / "pyproject.toml").stat().st_mtime) + 10
    for i, stamp in enumerate(stamps):
        (venv / stamp).touch()
        os.utime(venv / stamp, (start + i, start + i))
    return venv


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_runtime_targets_install_the_runtime_extras_only(tmp_path, target):
    installs = svperturb_installs(make_dry_run(tmp_path / "venv", target))
    assert installs, f"make {target} installs nothing into a fresh .venv"
    # resume runs `make run` again: the same install, printed twice
    assert set(installs) == {(".", frozenset(RUNTIME_EXTRAS))}, (target, installs)


def test_no_target_but_test_installs_the_test_extra(tmp_path):
    phony = re.search(r"^\.PHONY:(.*)$", (REPO / "Makefile").read_text(), re.MULTILINE)[1].split()
    assert set(RUNTIME_TARGETS) < set(phony)
    for target in set(phony) - {"test"}:
        installs = svperturb_installs(make_dry_run(tmp_path / "venv", target))
        assert all(extras == RUNTIME_EXTRAS for _, extras in installs), (target, installs)


def test_make_test_adds_the_test_extra_to_the_runtime(tmp_path):
    installs = svperturb_installs(make_dry_run(tmp_path / "venv", "test"))
    assert [extras for _, extras in installs] == [RUNTIME_EXTRAS, {"test"}]
    assert installs[0][0] == "."


def test_switching_installs_nothing_twice(tmp_path):
    after_run = venv_with(tmp_path / "run", STAMP)
    assert svperturb_installs(make_dry_run(after_run, "run")) == []
    assert [e for _, e in svperturb_installs(make_dry_run(after_run, "test"))] == [{"test"}]

    after_test = venv_with(tmp_path / "test", STAMP, TEST_STAMP)
    for target in ("run", "test", "dryrun"):
        assert svperturb_installs(make_dry_run(after_test, target)) == [], target


def test_a_change_of_pyproject_redoes_both_stamps(tmp_path):
    venv = venv_with(tmp_path, STAMP, TEST_STAMP)
    changed = ("-W", "pyproject.toml")
    assert [e for _, e in svperturb_installs(make_dry_run(venv, *changed, "test"))] == [
        RUNTIME_EXTRAS, {"test"}]
    assert [e for _, e in svperturb_installs(make_dry_run(venv, *changed, "run"))] == [
        RUNTIME_EXTRAS]


def requirements(extras: set[str]) -> list[Requirement]:
    """svperturb's requirements with `extras`, its own extras expanded, whatever the markers."""
    optional = PROJECT["optional-dependencies"]
    found, seen, todo = [], set(), [""] + sorted(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in PROJECT["dependencies"] if extra == "" else optional[extra]:
            req = Requirement(line)
            if canonicalize_name(req.name) == "svperturb":
                todo.extend(req.extras)
            else:
                found.append(req)
    return found


def is_test_only(name: str) -> bool:
    return canonicalize_name(name) in TEST_ONLY or canonicalize_name(name).startswith("nvidia-")


def test_the_runtime_extras_pull_nothing_of_the_test_extra():
    runtime = {canonicalize_name(r.name) for r in requirements(RUNTIME_EXTRAS)}
    assert {"snakemake", "mpi4py", "mpich", "numpy"} <= runtime
    assert not {name for name in runtime if is_test_only(name)}
    # and the test extra really adds them (with the runtime, so that it alone runs the tests)
    with_tests = {canonicalize_name(r.name) for r in requirements({"test"})}
    assert runtime < with_tests
    assert TEST_ONLY <= with_tests and any(n.startswith("nvidia-") for n in with_tests)


def installed_closure(roots: list[Requirement]) -> set[str]:
    """The distributions installed here that `roots` pull, through each one's Requires-Dist."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(r.name, frozenset(r.extras)) for r in roots if r.marker is None or r.marker.evaluate()]
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing to follow
        for line in requires:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e})
                                         for e in {"", *extras}):
                todo.append((req.name, frozenset(req.extras)))
    return {name for name, _ in seen}


def test_the_runtime_pulls_no_test_package_through_its_dependencies():
    """Through the installed distributions: pytest, xarray, h5netcdf and NVIDIA's wheels stay out
    (psutil comes in anyway, as a requirement of Snakemake's)."""
    closure = installed_closure(requirements(RUNTIME_EXTRAS))
    assert {"snakemake", "mpi4py", "h5py"} <= closure
    pulled = {name for name in closure if is_test_only(name)} - {"psutil"}
    assert not pulled
    assert not {"pluggy", "iniconfig"} & closure  # pytest's own


def test_environment_yml_holds_the_runtime():
    """environment.yml: the runtime (conda's names), with the same lower bounds; no test
    package. Its header's conda line for the tests names the test extra's packages."""
    text = (REPO / "environment.yml").read_text()
    conda = {}
    for line in yaml.safe_load(text)["dependencies"]:
        name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)(.*)", line).groups()
        if name not in {"python", "pip"}:
            conda[canonicalize_name(CONDA_NAMES.get(name, name))] = SpecifierSet(spec)
    runtime = {canonicalize_name(r.name): r.specifier for r in requirements(RUNTIME_EXTRAS)}
    assert conda == runtime

    tests = re.search(r"^#\s+conda install -c conda-forge (.+)$", text, re.MULTILINE)
    assert tests, "environment.yml's header says how to add the test packages"
    named = {canonicalize_name(n) for n in tests[1].split()}
    extra = {canonicalize_name(r.name) for r in requirements({"test"})} - set(runtime)
    assert named == {n for n in extra if not n.startswith("nvidia-")}
