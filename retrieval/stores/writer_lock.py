"""One writer at a time: the lock file both backends take before a write, refusing at once when held."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from retrieval.errors import QabotError


def take_writer_lock(lock_path: Path, location: str) -> FileLock:
    """The held lock at `lock_path`; when another process holds it, an error (exit 3) naming `location`."""
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise QabotError(
            f"another qabot is indexing into {location}: wait for it to finish, then try again", exit_code=3
        ) from exc
    return lock
