"""CPU and memory of the benchmark's servers, read from /proc, and stopping what they forked.

A server is its started process and every descendant: BentoML's supervisor starts its worker in
a session of its own and MLServer forks an inference worker, so the process group alone would
miss them. CPU is utime + stime of the live processes plus the cutime + cstime they reaped, in
seconds; cores used over a scenario are the difference over its wall time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.processes import ManagedProcess

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    start: int  # clock ticks since boot: tells a live process from a later one with its pid
    cpu_ticks: int
    rss_pages: int


def _read(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # NB: split after the parenthesised command (which may hold spaces), fields[i] is field i + 3
    # of proc(5): state, ppid, ..., utime, stime, cutime, cstime (14-17), starttime (22), rss (24).
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] in "ZX":
        return None
    cpu = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ProcStat(pid, int(fields[1]), int(fields[19]), cpu, int(fields[21]))


def snapshot() -> dict[int, ProcStat]:
    """Every live process on the machine."""
    stats = (_read(int(entry)) for entry in os.listdir("/proc") if entry.isdigit())
    return {s.pid: s for s in stats if s is not None}


def tree(root: int, procs: dict[int, ProcStat]) -> list[ProcStat]:
    """``root`` and its live descendants in ``procs``."""
    children: dict[int, list[int]] = {}
    for stat in procs.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            found.append(procs[pid])
            todo.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int, procs: dict[int, ProcStat]) -> float:
    return sum(s.cpu_ticks for s in tree(root, procs)) / _TICKS


def rss_mb(root: int, procs: dict[int, ProcStat]) -> float:
    return sum(s.rss_pages for s in tree(root, procs)) * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores, /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


def stop_tree(process: ManagedProcess, grace: float = 10.0) -> None:
    """Stop ``process``'s group, then any descendant that left the group and outlived it."""
    if process.process is None:
        return
    descendants = [s for s in tree(process.pid, snapshot()) if s.pid != process.pid]
    process.stop(grace)
    deadline = time.monotonic() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [s for s in descendants if _same_process(s)]
        for stat in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stat.pid, sig)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [s for s in left if _same_process(s)]
        if not left:
            return
        deadline = time.monotonic() + grace


def _same_process(stat: ProcStat) -> bool:
    now = _read(stat.pid)
    return now is not None and now.start == stat.start
