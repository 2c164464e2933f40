"""The README's shell blocks, run as a reader pastes them, so they cannot drift from the CLI and the API.

Every ```sh (or ```bash) block in README.md runs, in the order of the page, in one fresh data directory
(`KENG_DATA`) and working directory, with the installed `keng` first on PATH. A block that cannot run here (it
installs software, or runs until stopped) carries the marker `<!-- not run by tests/e2e/test_readme.py: REASON -->`
on the line above its fence. Each block runs in its own `bash` with `set -e`: the first failing command ends it,
and the failure names the README line, the command and what the block printed. `PORT` is set to a free port, so a
block that serves reads it with a default (`PORT=${PORT:-8080}`) and the test never collides with a running keng.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.keng_process import free_port, keng_home

README = Path(__file__).resolve().parents[2] / "README.md"
SHELLS = ("sh", "bash")
SKIP = re.compile(r"<!-- not run by tests/e2e/test_readme\.py: (?P<reason>\S.*?) -->")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
# -E: the trap also fires inside `$(...)`, where a failing `keng` hides in an assignment.
PRELUDE = (
    "set -Eeo pipefail\ntrap 'echo \"README.md line $((LINENO + {offset})): exit $? from: $BASH_COMMAND\" >&2' ERR\n"
)
BLOCK_TIMEOUT_S = 120
TOOLS = ("bash", "curl", "openssl", "od", "base64")


@dataclass(frozen=True)
class Block:
    """One fenced block: the README line its code starts on, its language, its code, and why it is not run."""

    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def runs(self) -> bool:
        return self.lang in SHELLS and self.skip is None


def blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, in order."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        start = i + 1
        end = next((j for j in range(start, len(lines)) if lines[j].startswith("```")), len(lines))
        marker = SKIP.fullmatch(lines[i - 1].strip()) if i > 0 else None
        code = "\n".join(lines[start:end]) + "\n"
        found.append(Block(start + 1, opening["lang"], code, marker["reason"] if marker else None))
        i = end + 1
    return found


def keng_on_path(bin_dir: Path) -> str:
    """A PATH with `keng` first: the console script beside this interpreter, or a shim running this checkout."""
    script = Path(sys.executable).with_name("keng")
    if not script.exists():
        bin_dir.mkdir(parents=True, exist_ok=True)
        script = bin_dir / "keng"
        root = README.parent
        launcher = f'PYTHONPATH="{root}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" -m keng.runtime.cli "$@"'
        script.write_text(f"#!/bin/sh\n{launcher}\n")
        script.chmod(0o755)
    return f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}"


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one block in its own bash and process group. Its output goes to a file, not a pipe, so a server the block
    left running (it failed before stopping it) cannot hold the test up; that server is killed when bash ends."""
    script = PRELUDE.format(offset=block.line - 3) + block.code
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            ["bash", "-c", script], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = proc.wait(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            returncode = -1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        text = out.read().decode(errors="replace")
    if returncode == -1:
        text += f"\n(killed after {BLOCK_TIMEOUT_S} s)"
    return subprocess.CompletedProcess(proc.args, returncode, text, "")


def failure(block: Block, done: subprocess.CompletedProcess[str]) -> str:
    """What a reader of the failed test needs: where the block is, the failing command, and the output's tail."""
    return (
        f"README.md block at line {block.line} exited {done.returncode}\n"
        f"--- block ---\n{block.code}--- output (last 6,000 characters) ---\n{done.stdout[-6000:]}"
    )


def reader_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a reader with a fresh data directory and no other keng settings."""
    env = keng_home(tmp_path / "data").env
    return env | {"PATH": keng_on_path(tmp_path / "bin"), "PORT": str(free_port())}


def ended(pid: int, within_s: float = 5.0) -> bool:
    """True once a process is gone or a zombie (killed, waiting for a parent that may never reap it)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z" or time.monotonic() > deadline:
            return state == "Z"
        time.sleep(0.05)


def require_tools() -> None:
    """Skip (locally) or fail (in CI) when a tool the README's blocks call is missing."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        problem = f"the README's shell blocks need {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)


def test_the_readme_runs_the_service_block_and_every_skip_marker_sits_on_a_shell_block() -> None:
    text = README.read_text(encoding="utf-8")
    found = [b for b in blocks(text) if b.lang in SHELLS]
    assert any("keng serve --port" in b.code for b in found if b.runs), "the service block is not run"
    assert len(SKIP.findall(text)) == len([b for b in found if b.skip]), "a skip marker is not right above a fence"


def test_readme_shell_blocks_run_in_order_in_a_fresh_data_directory(tmp_path: Path) -> None:
    require_tools()
    env = reader_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    started = time.monotonic()
    for block in blocks(README.read_text(encoding="utf-8")):
        if block.runs:
            done = run_block(block, work, env)
            assert done.returncode == 0, failure(block, done)
    print(f"README blocks ran in {time.monotonic() - started:.1f} s")


def test_a_failing_readme_command_is_named_with_its_line_and_output_and_what_it_started_is_ended(
    tmp_path: Path,
) -> None:
    require_tools()
    text = "intro\n\n```sh\nsleep 300 &\necho started $!\nX=$(keng-no-such-command --flag)\necho after\n```\n"
    started = time.monotonic()
    done = run_block(blocks(text)[0], tmp_path, reader_env(tmp_path))
    assert done.returncode != 0 and time.monotonic() - started < 30
    assert "README.md line 6: exit 127 from: keng-no-such-command --flag" in failure(blocks(text)[0], done)
    assert "after" not in done.stdout
    sleeper = int(done.stdout.split("started ")[1].split()[0])
    assert ended(sleeper)


@pytest.mark.parametrize(
    ("text", "runs", "skip"),
    [
        ("```sh\nkeng init\n```\n", True, None),
        (
            "<!-- not run by tests/e2e/test_readme.py: runs until stopped -->\n```sh\nkeng serve\n```\n",
            False,
            "runs until stopped",
        ),
        ("```text\nkeng init\n```\n", False, None),
    ],
)
def test_only_unmarked_shell_blocks_run(text: str, runs: bool, skip: str | None) -> None:
    (block,) = blocks(text)
    assert (block.runs, block.skip, block.code) == (runs, skip, text.splitlines()[-2] + "\n")
