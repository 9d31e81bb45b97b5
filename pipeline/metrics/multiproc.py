"""Multiprocess mode done right: one scrape target per host, a bounded directory.

Every process of a host (gunicorn workers, each Celery pool process) writes its counters and
histograms to its own files under `PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess
mode: the variable is in the process's environment before it starts); a scrape merges them all.

prometheus_client keeps a dead process's counter files for ever (its counts must not vanish), so
with `max_tasks_per_child` or gunicorn's worker recycling the directory grows by a file or two
per process ever started, and every scrape reads them all. Here a process that exits is
*retired*: its live gauges are dropped (`mark_process_dead`) and its counter and histogram
values are folded into one `<type>_archive.db` file per type, then its files are removed, so the
directory holds the live processes' files plus one archive per type, and no count is lost.

Who retires whom: a Celery pool process retires itself as it exits (`worker_process_shutdown`),
gunicorn's arbiter retires a worker it reaped (`child_exit`), and each scrape retires the files of
any pid no longer running (a process killed with SIGKILL runs no hook). Folding and reading are
serialised by a `flock` on `<dir>/.lock`: a scrape reads under a shared lock and never sees a
count twice (in the archive and in the dead file) or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
ARCHIVE = "archive"
# files whose values add up across processes; a gauge's do not (and ours are live gauges, whose
# files `mark_process_dead` removes)
SUMMED = ("counter", "histogram", "summary")


def prepare(path: Path, *, wipe: bool = False) -> None:
    """Creates the directory; `wipe` empties it first (`stackwire up`, before any child starts:
    files of a previous run would merge into this one's counts)."""
    if wipe and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def locked(path: Path, *, exclusive: bool, wait: bool = True) -> Iterator[bool]:
    """Holds the directory's lock; yields False when `wait` is off and another holds it."""
    descriptor = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(descriptor, flags if wait else flags | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # closing releases the lock


def retire(path: Path, pid: int) -> None:
    """The process `pid` exited: its live gauges dropped, its sums folded into the archive."""
    mark_process_dead(pid, str(path))
    with locked(path, exclusive=True):
        _fold(path, list(path.glob(f"*_{pid}.db")))


def reap(path: Path) -> int:
    """Retires every process whose files are here but which no longer runs; returns how many.
    Skipped (0) while another process holds the lock: the next scrape does it."""
    dead = {pid for pid in _pids(path) if not _running(pid)}
    if not dead:
        return 0
    with locked(path, exclusive=True, wait=False) as held:
        if not held:
            return 0
        for pid in dead:
            mark_process_dead(pid, str(path))
            _fold(path, list(path.glob(f"*_{pid}.db")))
    return len(dead)


def collect(path: Path) -> Iterable[Metric]:
    """Every process's metrics merged, as one scrape sees them (dead processes reaped first)."""
    reap(path)
    with locked(path, exclusive=False):
        # a process that is creating its file has not sized it yet: it holds no value, and
        # mmap refuses an empty file
        files = [str(f) for f in path.glob("*.db") if _has_values(f)]
        return list(MultiProcessCollector.merge(files, accumulate=True))


class DirectoryCollector:
    """A registry's view of the directory (prometheus_client's MultiProcessCollector, locked)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        return collect(self.path)


def _has_values(file: Path) -> bool:
    try:
        return file.stat().st_size > 0
    except FileNotFoundError:  # retired meanwhile
        return False


def _fold(path: Path, files: list[Path]) -> None:
    """Adds the files' values to their type's archive, then removes them. Lock held by caller."""
    by_type: dict[str, list[Path]] = defaultdict(list)
    for file in files:
        by_type[file.name.split("_", 1)[0]].append(file)
    for kind, group in by_type.items():
        if kind in SUMMED:
            _add_to_archive(path, kind, group)
        for file in group:
            file.unlink(missing_ok=True)


def _add_to_archive(path: Path, kind: str, files: list[Path]) -> None:
    archive = path / f"{kind}_{ARCHIVE}.db"
    totals: dict[str, float] = defaultdict(float)
    for file in [archive, *files] if archive.exists() else files:
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(file)):
            totals[key] += value
    temporary = path / f".{kind}_{ARCHIVE}.tmp"  # not *.db: no scrape reads it half-written
    temporary.unlink(missing_ok=True)
    written = MmapedDict(str(temporary))
    try:
        for key, value in totals.items():
            written.write_value(key, value, 0.0)
    finally:
        written.close()
    os.replace(temporary, archive)


def _pids(path: Path) -> set[int]:
    found = set()
    for file in path.glob("*.db"):
        tail = file.stem.rsplit("_", 1)[-1]
        if tail.isdigit():
            found.add(int(tail))
    return found


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
