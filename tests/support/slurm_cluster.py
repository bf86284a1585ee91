"""A throw-away single-node SLURM cluster on localhost for the tests (Debian's slurm-wlm and munge).

`ensure_slurm()` installs the packages with apt-get when they are missing (root only) and returns
None, or the reason this machine cannot run SLURM. `Cluster(directory)` starts munged, slurmctld
and slurmd with every file (config, state, spool, logs, PIDs, the munge socket) under
`directory`, and stops each daemon by its PID. Configuration as found by trying
(docs/cluster.md, "The test cluster"): no cgroups, PMI2 for pip's MPICH, no accounting storage (the
workflow then polls squeue, and MinJobAge keeps finished jobs visible long enough).
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
DAEMONS = ("munged", "slurmctld", "slurmd")


def ensure_slurm() -> str | None:
    """None when slurmctld, slurmd, srun and munged are (or could be made) available, else why not."""
    if all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "srun", "sbatch", "munged")):
        return None
    if os.name != "posix" or os.geteuid() != 0:
        return "SLURM is not installed and installing it needs root (apt-get)"
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode != 0:
            return f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}"
    return None


def _free_ports(count: int) -> list[int]:
    """TCP ports free now: a cluster left behind by a killed test run keeps its own, so it can
    never answer (and run the jobs of) a new one."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 2048


class Cluster:
    """munged + slurmctld + slurmd under `directory`; use as a context manager."""

    def __init__(self, directory: Path, cpus: int | None = None):
        self.directory = Path(directory)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus or os.cpu_count() or 1
        self.conf = self.directory / "slurm.conf"
        self.controller_port, self.node_port = _free_ports(2)
        # job ids that no earlier test cluster used: MPICH names its shared-memory segments after
        # the job step, and a segment left by a killed run's ranks, met again by a fresh cluster's
        # job 10, failed MPI_Init ("Message truncated") while the other rank waited forever
        self.first_job_id = random.randrange(100_000, 60_000_000)
        self.linked_conf = False
        # munged runs as user munge, which must reach its directory: a fresh one under /tmp
        # (pytest's own temp dirs are 0700 root), removed by stop()
        self.munge_dir = Path(tempfile.mkdtemp(prefix="svperturb-munge-"))
        self.munge_socket = self.munge_dir / "munge.socket"
        self.pid_files = {
            "munged": self.munge_dir / "munged.pid",
            "slurmctld": self.directory / "slurmctld.pid",
            "slurmd": self.directory / "slurmd.pid",
        }

    @property
    def env(self) -> dict[str, str]:
        """The environment under which SLURM's client commands reach this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        d = self.directory
        for sub in ("state", "spool", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        memory = max(512, int(_memory_mb() * 0.8))
        self.conf.write_text(f"""ClusterName=svperturb-test
SlurmctldHost={self.host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={d / 'state'}
SlurmdSpoolDir={d / 'spool'}
SlurmctldPidFile={self.pid_files['slurmctld']}
SlurmdPidFile={self.pid_files['slurmd']}
SlurmctldLogFile={d / 'log' / 'slurmctld.log'}
SlurmdLogFile={d / 'log' / 'slurmd.log'}
SlurmctldPort={self.controller_port}
SlurmdPort={self.node_port}
FirstJobId={self.first_job_id}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=pmi2
ReturnToService=2
MinJobAge=600
KillWait=5
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
NodeName={self.host} CPUs={self.cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")

    def _start_munge(self) -> None:
        munge_dir = self.munge_dir
        user = pwd.getpwnam("munge")
        os.chown(munge_dir, user.pw_uid, user.pw_gid)
        os.chmod(munge_dir, 0o700)
        seed = munge_dir / "munged.seed"
        command = ["munged", f"--socket={self.munge_socket}", f"--pid-file={self.pid_files['munged']}",
                   f"--log-file={munge_dir / 'munged.log'}", f"--seed-file={seed}", "--force"]
        result = subprocess.run(["runuser", "-u", "munge", "--", *command], capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            log = munge_dir / "munged.log"
            raise RuntimeError(f"munged failed to start: {result.stderr.strip()} "
                               f"{log.read_text()[-500:] if log.exists() else ''}")

    def start(self) -> Cluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o755)
        self._write_config()
        # srun inside a batch job looks for the config at its compiled-in path, not SLURM_CONF:
        # point that path at ours while the cluster runs (never over a real cluster's config)
        if SYSTEM_CONF.is_symlink():  # only this module makes links there: one left by a killed run
            SYSTEM_CONF.unlink()
        if not SYSTEM_CONF.exists():
            SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
            SYSTEM_CONF.symlink_to(self.conf)
            self.linked_conf = True
        self._start_munge()
        self._wait(lambda: self.munge_socket.exists(), "munged's socket")
        env = self.env
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, env=env, timeout=60)
        subprocess.run(["slurmd", "-f", str(self.conf)], check=True, env=env, timeout=60)
        self._wait(self._idle, "the node to be idle (sinfo)")
        return self

    def _idle(self) -> bool:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def _wait(self, ready, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"SLURM test cluster: timed out waiting for {what}; logs in "
                                   f"{self.directory / 'log'}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every daemon by the PID it wrote, the last started first."""
        for daemon in reversed(DAEMONS):
            path = self.pid_files[daemon]
            try:
                pid = int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.munge_dir, ignore_errors=True)
        if self.linked_conf and SYSTEM_CONF.is_symlink():
            SYSTEM_CONF.unlink()
            self.linked_conf = False

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
