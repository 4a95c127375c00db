"""Milvus Lite's network server (`milvus-lite server`) in a subprocess on 127.0.0.1, for tests of
qabot talking to Milvus over `http://host:port` as it talks to a Milvus server in production.

`MilvusLiteServer` starts it on a free port with its own data folder, waits until it accepts
connections, and can kill it (a lost server) and start it again on the same port and data folder.
`milvus_lite_server()` skips the test only when milvus-lite cannot start on this machine at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MILVUS_LITE = Path(sys.executable).parent / "milvus-lite"
READY = "MilvusLite gRPC server listening on"


class MilvusLiteCannotStart(Exception):
    """milvus-lite is not installed, or its server ended before it listened."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class MilvusLiteServer:
    """One `milvus-lite server --data-dir DATA --host 127.0.0.1 --port PORT` process at a time."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 120.0) -> MilvusLiteServer:
        """Start it and wait until it prints that it listens and accepts a connection."""
        if not MILVUS_LITE.exists():
            raise MilvusLiteCannotStart(f"{MILVUS_LITE} does not exist (pip install -e '.[milvus]')")
        assert self.process is None or self.process.poll() is not None, "the server is already running"
        command = [str(MILVUS_LITE), "server", "--data-dir", str(self.data_dir)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--max-workers", "4"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while not (READY in self.log and _accepts(self.port)):
            if self.process.poll() is not None:
                code = self.process.returncode
                raise MilvusLiteCannotStart(f"milvus-lite server exited with {code}: {self.log[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"no milvus-lite server at {self.uri} after {timeout} s: {self.log[-2000:]}")
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """Kill it as a crash or a lost machine would (SIGKILL), and wait until the port is closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
        deadline = time.monotonic() + 30
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it as Ctrl-C would (the server closes its data folder), killing it if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def milvus_lite_server(data_dir: Path, timeout: float = 120.0) -> Iterator[MilvusLiteServer]:
    """A running server for the block; the test is skipped only if milvus-lite cannot start at all."""
    server = MilvusLiteServer(data_dir)
    try:
        server.start(timeout)
    except MilvusLiteCannotStart as reason:
        pytest.skip(f"milvus-lite cannot start here: {reason}")
    try:
        yield server
    finally:
        server.stop()
