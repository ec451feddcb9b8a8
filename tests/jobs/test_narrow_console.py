"""The console in an 80-column terminal (a real pseudo-terminal): Ray's per-stage bars would wrap
into hundreds of lines, so they are off and our ``progress:`` lines fit the width; Ctrl-C's
``error: interrupted`` line starts a line of its own."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def read_until(fd: int, proc: subprocess.Popen, needle: str | None, timeout_s: float) -> str:
    """What the terminal shows until ``needle`` appears (or the process ends)."""
    out, deadline = b"", time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:     # the other side closed: the process ended
                break
            out += chunk
            if needle is not None and needle.encode() in out:
                break
        elif proc.poll() is not None and needle is None:
            break
    return out.decode(errors="replace")


def test_narrow_terminal_progress_fits_and_the_interrupt_line_stands_alone(
        tmp_path, ctrl_c_reaches_children):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    ray_tmp = tempfile.mkdtemp(prefix="nn", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "COLUMNS", "LINES")}
    env.update(RAY_TMPDIR=ray_tmp, NLE_FAULT_SLOW_BATCH_S="120", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.transcribe", "--input", str(TINY_AUDIO),
         "--output", str(tmp_path / "out"), "--model", str(TINY_MODEL), "--actors", "1,1"],
        cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        shown = read_until(master, proc, "progress: ", 300)
        assert "progress: " in shown, shown[-3000:]
        shown += read_until(master, proc, "\n", 30)
        proc.send_signal(signal.SIGINT)           # Ctrl-C, to the job alone
        shown += read_until(master, proc, None, 120)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        os.close(master)
    assert proc.returncode == 130, shown[-3000:]
    lines = shown.replace("\r\n", "\n").split("\n")
    pieces = [ANSI.sub("", piece) for line in lines for piece in line.split("\r")]
    # Our own sentences may wrap like any text; nothing else is wider than the terminal, and the
    # whole run is a handful of lines (a 300-file job left 372 lines of wrapped bars before).
    ours = ("indexed ", "inference: ", "note: ", "error: ")
    assert [p for p in pieces if len(p) > 80 and not p.startswith(ours)] == []
    assert len([p for p in pieces if p.strip()]) < 30, pieces
    progress = [p for p in pieces if p.startswith("progress: ")]
    # (the first may come from the index stage: "progress: read+select 0/1")
    assert progress and all(re.search(r"\d+/(\d+|\?)", p) for p in progress), progress
    assert not any("Tasks:" in p or "Queued blocks" in p for p in pieces)   # no Ray bar text
    [error] = [line for line in lines if "error: interrupted" in line]
    assert ANSI.sub("", error.split("\r")[-1]).startswith("error: interrupted; what was written is kept")
    assert not ANSI.sub("", error).split("error:")[0].strip()     # nothing glued before it
