"""Running ffmpeg/ffprobe: argument lists (never a shell), time limits, clean errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from emoflow.errors import MediaError


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise MediaError(f"{binary} not found on PATH: install ffmpeg (scripts/setup.sh does)")
    return path


def command(*args: str) -> list[str]:
    """An ffmpeg command line: the binary (from PATH), no stdin, errors only, overwrite
    outputs, then ``args``."""
    return [require("ffmpeg"), "-nostdin", "-loglevel", "error", "-y", *args]


def last_line(text: str, path: str | os.PathLike | None = None) -> str:
    """ffmpeg's last stderr line, without the 'file:<path>: ' it prefixes or the
    '[demuxer @ 0x55...] ' context (a memory address: it would differ on every run)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    if path is not None:
        line = line.replace(f"file:{path}: ", "")
    return re.sub(r"^\[[^\]]* @ 0x[0-9a-fA-F]+\] ", "", line)


def ffprobe(path: str | os.PathLike, timeout: float) -> dict:
    """ffprobe's JSON (format + streams) for ``path``; ``MediaError`` naming the cause."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: zero-byte file")
    cmd = [require("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", str(path)]
    cmd = cmd[:-2] + [f"file:{path}"]  # 'file:' keeps names like 'a:b.mp4' or '-x.mp4' literal
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise MediaError(f"{path}: ffprobe did not finish within {timeout:g} s") from None
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise MediaError(
            f"{path}: not a readable media file ({last_line(err, path) or f'ffprobe exit {proc.returncode}'})"
        )
    try:
        info = json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        raise MediaError(f"{path}: ffprobe printed unreadable output") from None
    if not info.get("streams"):
        raise MediaError(f"{path}: no audio or video streams ({last_line(err, path) or 'ffprobe found none'})")
    return info


class Process:
    """An ffmpeg process whose stdout we stream; stderr goes to a temp file (no pipe
    deadlock).  A watchdog kills it (its whole process group) once it has run
    ``timeout`` seconds in total, so a hung decoder ends even while we are blocked
    reading its output; ``timed_out`` then says so."""

    def __init__(self, cmd: list[str], timeout: float):
        self.cmd = cmd
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._err = tempfile.TemporaryFile()
        self.timed_out = False
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err, start_new_session=True
        )
        self._watchdog = threading.Timer(max(0.0, timeout), self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        if self.proc.poll() is None:
            self.timed_out = True
            self.kill()

    def expired(self) -> bool:
        return self.timed_out or time.monotonic() > self._deadline

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def finish(self) -> tuple[int, str]:
        """Wait (within the time limit); return (exit code, stderr text)."""
        try:
            self.proc.wait(timeout=max(0.1, self._deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.kill()
            self.proc.wait()
        self._watchdog.cancel()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._err.seek(0)
        err = self._err.read().decode("utf-8", "replace")
        self._err.close()
        return self.proc.returncode, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        if not self._err.closed:
            self.finish()
        return False
