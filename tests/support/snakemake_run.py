"""A Snakemake run watched while it goes, and the jobs its log says it started and finished."""

from __future__ import annotations

import re
import subprocess
import threading

import psutil


def jobs(log: str) -> tuple[dict[str, str], set[str]]:
    """(jobid -> 'rule output', finished 'rule output's) of one Snakemake run's log (dry runs
    indent the jobs of a group further)."""
    started, finished, rule, output = {}, set(), None, ""
    for line in map(str.strip, log.splitlines()):
        if m := re.match(r"(?:local)?rule (\w+):$", line):
            rule, output = m.group(1), ""
        elif rule and line.startswith("output: "):
            output = line.split(": ", 1)[1].split(", ")[0]
        elif rule and (m := re.match(r"jobid: (\d+)$", line)):
            if rule != "all":
                started[m.group(1)] = f"{rule} {output}"
            rule = None
        elif m := re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line):
            finished.add(m.group(1))
    return started, {started[j] for j in finished if j in started}


class Session:
    """One Snakemake process whose output is collected while the test watches its jobs."""

    def __init__(self, cmd: list[str], env: dict | None = None, cwd=None):
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True, env=env, cwd=cwd)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.root = psutil.Process(self.process.pid)

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def wait(self, timeout: float = 600) -> int:
        code = self.process.wait(timeout=timeout)
        self.reader.join(timeout=30)
        self.process.stdout.close()
        return code

    @property
    def log(self) -> str:
        return "".join(self.lines)
