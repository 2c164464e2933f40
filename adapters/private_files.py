"""Private files: keng's data directory is 0700 and everything in it 0600 (the event store and its SQLite -wal/-shm
files, read models, integration secrets, signing keys, received CAP documents, audio assets, the audio link key).

The command line sets the process umask to 0o077 before anything else (runtime/cli/main.py), so files that libraries
create are private too; the writers below do not rely on it. SQLite gives its -wal and -shm files the mode of the
database file, which is why the database file is created here (0600) before SQLite opens it. `loose_paths` finds what
an older installation left wider, for the startup warning and `keng doctor`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create a directory (and its missing parents) readable by the owner only; an existing one is left as it is."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def touch_private(path: Path) -> None:
    """Create an empty file (mode 0600) unless one exists: SQLite then opens it and makes its -wal and -shm files
    with the same mode. An existing file is not opened at all: closing any descriptor of an SQLite database drops
    every POSIX lock this process holds on it (its open connections' too), and another process would then take
    itself for the last one, checkpoint and delete the WAL under this one's feet (a corrupt database)."""
    private_dir(path.parent)
    if path.exists():
        return
    with contextlib.suppress(FileExistsError):  # made meanwhile by another process: it is theirs to open
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def write_private(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write `data` to `path` atomically (a temporary file beside it, then a rename), mode 0600; `durable` syncs the
    bytes to disk before the rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a stale temporary file keeps its old mode through O_CREAT
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_once(path: Path, data: bytes) -> None:
    """Make `path` (mode 0600) with `data` unless it exists. Processes that start at once on a new data directory
    (two workers) agree on one content and none sees it half-written: it is written whole to a temporary file that is
    then linked into place (the link fails when the file exists: the first one made stays, and every caller reads
    that one)."""
    if path.exists():
        return
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process's came first
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class LoosePath:
    """A directory or file that group or others may use; `wanted` is its mode with those bits cleared."""

    path: Path
    mode: int
    is_dir: bool

    @property
    def wanted(self) -> int:
        return self.mode & ~PRIVATE_UMASK

    def as_dict(self) -> dict[str, str]:
        return {
            "path": str(self.path),
            "kind": "directory" if self.is_dir else "file",
            "mode": f"{self.mode:04o}",
            "wanted": f"{self.wanted:04o}",
        }


class PrivateJsonFile:
    """A private JSON object file (`{name: text}`) in the data directory, written atomically and durably; a subclass
    names its FILENAME and holds `_lock` around a read-modify-write."""

    FILENAME = ""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / self.FILENAME
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data: dict[str, str] = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        return data

    def _write(self, data: dict[str, str]) -> None:
        private_dir(self.path.parent)
        write_private(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS), durable=True)


def _loose(path: Path) -> LoosePath | None:
    info = path.lstat()
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        return None  # links, sockets and pipes carry no data of their own
    mode = stat.S_IMODE(info.st_mode)
    return LoosePath(path, mode, stat.S_ISDIR(info.st_mode)) if mode & PRIVATE_UMASK else None


def loose_paths(root: Path) -> list[LoosePath]:
    """Every directory (root included) and file under `root` with group or other permission bits set, in walk order.
    Symbolic links are not followed."""
    found = [_loose(root)]
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        dirs.sort()
        found += [_loose(base / name) for name in (*dirs, *sorted(files))]
    return [item for item in found if item is not None]


def tighten(items: list[LoosePath]) -> None:
    """Clear the group and other bits of each path."""
    for item in items:
        os.chmod(item.path, item.wanted)  # never a link: loose_paths skips them
