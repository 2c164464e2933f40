"""Every writer under the data directory makes private files by itself (0700 folders, 0600 files), whatever the
process umask: the event store with its -wal and -shm, read models, secrets, the audio link key, audio assets and
received CAP documents. The `keng` command sets umask 0o077 too; these run under a permissive 0o022 to prove the
writers do not lean on it. Processes that start at once on a new data directory (two workers) agree on one audit
key, one audio link key and one console session key: none fails, none reads a half-written one."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from keng.adapters.audio_links import AudioLinks
from keng.adapters.audio_store import AudioStore
from keng.adapters.audit.keys import load_or_create
from keng.adapters.private_files import loose_paths, tighten
from keng.adapters.sealed_cookies import CookieSealer
from keng.adapters.secrets import SecretStore
from keng.adapters.tts.base import Audio
from keng.runtime.bootstrap import open_app
from keng.runtime.config import load_settings
from keng.runtime.workers.readmodels import caught_up
from keng.services.cap_documents import keep_document
from keng.services.inventory import install_sample


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_each_writer_creates_private_folders_and_files_under_a_permissive_umask(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    settings = load_settings(data_dir=str(data), environ={})
    app = open_app(settings)
    try:
        install_sample(app)
        assert {p.name for p in data.iterdir()} >= {"keng.db", "keng.db-wal", "keng.db-shm"}
        caught_up(app).close()  # the read models beside the store
        SecretStore(data).add("city-source", "s" * 40)
        AudioLinks.in_data_dir(data)
        AudioStore(data / "assets").get_or_create(
            "ab" * 32, "test", "", lambda: Audio(samples=np.zeros(800, dtype=np.int16), sample_rate=8000)
        )
        keep_document(data, b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'/>")
    finally:
        app.close()
    names = {str(p.relative_to(data)) for p in data.rglob("*")}
    assert {"keng.db.readmodels.db", "integrations.secrets.json", "audio-links.key", "cap"} <= names, sorted(names)
    assert any(n.startswith("assets/") and n.endswith(".mp3") for n in names)
    assert any(n.startswith("cap/") and n.endswith(".xml") for n in names)
    assert mode(data) == 0o700
    assert loose_paths(data) == []


def test_loose_paths_names_wider_folders_and_files_and_tighten_clears_group_and_other_bits(tmp_path: Path) -> None:
    (tmp_path / "cap").mkdir(mode=0o755)
    (tmp_path / "cap" / "a.xml").write_bytes(b"x")
    (tmp_path / "cap" / "a.xml").chmod(0o644)
    (tmp_path / "tool").write_bytes(b"x")
    (tmp_path / "tool").chmod(0o700)  # an owner-only executable is private
    (tmp_path / "link").symlink_to("/etc/hostname")  # links are not followed
    tmp_path.chmod(0o750)
    loose = loose_paths(tmp_path)
    assert [(item.path, f"{item.mode:04o}", f"{item.wanted:04o}") for item in loose] == [
        (tmp_path, "0750", "0700"),
        (tmp_path / "cap", "0755", "0700"),
        (tmp_path / "cap" / "a.xml", "0644", "0600"),
    ]
    tighten(loose)
    assert loose_paths(tmp_path) == []
    assert mode(tmp_path / "cap" / "a.xml") == 0o600 and mode(tmp_path / "tool") == 0o700


def test_opening_the_store_again_in_a_process_keeps_its_locks_so_another_process_never_removes_the_wal(
    tmp_path: Path,
) -> None:
    """`keng serve` opens the store twice (the API's application, the workers'), and its render processes open it
    too. Closing any descriptor of an SQLite file drops every POSIX lock the process holds on it: had the second
    opening touched the existing file, another process closing its last connection would have taken itself for the
    last one and checkpointed and deleted the WAL under the service (a corrupt database, seen once)."""
    settings = load_settings(data_dir=str(tmp_path), environ={})
    first = open_app(settings)
    install_sample(first)  # the WAL holds frames; this connection holds its shared lock on the file
    second = open_app(settings, create=False)
    db = tmp_path / "keng.db"
    probe = f"import sqlite3; c = sqlite3.connect({str(db)!r}); c.execute('select 1 from sqlite_master'); c.close()"
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
    assert (tmp_path / "keng.db-wal").exists()  # the other process saw this one still there
    assert first.max_position() == second.max_position() > 0
    first.close()
    second.close()
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


FAR = datetime(2099, 1, 1, tzinfo=UTC)


Keys = tuple[bytes, str, bool]


def _start(data: Path, start: threading.Barrier, found: list[Keys], failed: list[BaseException]) -> None:
    """One process starting on the data directory: its audit key, its audio link key (a query signed with it) and its
    console session key (whether it opens a cookie sealed with the key on disk)."""
    start.wait(30)
    try:
        signer, links, cookies = load_or_create(data), AudioLinks.in_data_dir(data), CookieSealer(data)
        sealed = cookies.seal({"h": "lan"})
        found.append((signer.public, links.query("a", FAR), CookieSealer(data).open(sealed, max_age_s=60) is not None))
    except BaseException as e:
        failed.append(e)


def test_starting_at_once_on_a_new_data_directory_every_starter_gets_the_same_keys(tmp_path: Path) -> None:
    # (found by bench/faults.py: of two workers started together, one failed with FileExistsError on the audit key)
    for round_ in range(20):
        data, start = tmp_path / f"data-{round_}", threading.Barrier(6)
        found: list[Keys] = []
        failed: list[BaseException] = []
        threads = [threading.Thread(target=_start, args=(data, start, found, failed)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failed, failed  # none found a key file half-written, none failed on one made meanwhile
        assert len(found) == 6 and len(set(found)) == 1
        assert mode(data / "audit-key.pem") == 0o600 and not [p for p in data.iterdir() if p.name.startswith(".")]
