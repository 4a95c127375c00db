"""Reading files that may be hostile: only regular files, never blocking, never more than asked for.

The files qabot reads go through here (articles, index files, the config file, feeds.json,
question sets, a reader's calibration.json, secret files), so that a symlink to /dev/zero, a FIFO
or a folder named like a file is refused at once with a one-line reason instead of filling memory
or hanging, and no file is read past the size its reader allows.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefusedError(Exception):
    """A path that was not read, and why (`reason`, e.g. "a character device, not a regular file")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileTooBigError(FileRefusedError):
    """A regular file holding more bytes than the reader accepts."""


class NotTextError(FileRefusedError):
    """A regular file that is not text in the expected encoding; `line` is where the first bad byte is."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.line = line


class FileMissingError(FileRefusedError):
    """Nothing at the path (or a symlink to nothing): for readers to whom a missing file means "none yet"."""


def display_path(path: Path | str) -> str:
    """A path as text that can be printed and stored as UTF-8: bytes that are not UTF-8 become \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular_file(path: Path) -> BinaryIO:
    """Open `path` for reading if it is a regular file once symlinks are resolved.

    The type is checked before opening (a device is never opened) and again on the open file,
    which is opened without blocking, so a FIFO swapped in meanwhile is refused, not waited on.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefusedError(f"{_kind(mode)}, not a regular file")
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError as exc:
        raise FileMissingError(f"cannot be read ({exc.strerror or exc})") from exc
    except OSError as exc:
        raise FileRefusedError(f"cannot be read ({exc.strerror or exc})") from exc
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise FileRefusedError(f"{_kind(mode)}, not a regular file")
    return os.fdopen(descriptor, "rb")


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of regular file `path`; FileTooBigError when it holds more than `max_bytes`.

    At most `max_bytes + 1` bytes are read whatever the file's size says (files in /proc say 0).
    """
    with open_regular_file(path) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise FileRefusedError(f"cannot be read ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise FileTooBigError(f"bigger than {max_bytes} bytes")
    return data


def read_text_file(path: Path, max_bytes: int, encoding: str = "utf-8") -> str:
    """The text of regular file `path` (at most `max_bytes` bytes); FileRefusedError when it is not
    a regular file, is too big or is not text in `encoding` (FileMissingError when there is none,
    NotTextError when it is not text)."""
    data = read_regular_file(path, max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise NotTextError(f"not {exc.encoding.upper()} text (byte {exc.start} cannot be decoded)", line) from exc


def read_json_file(path: Path, max_bytes: int) -> Any:
    """The JSON value in regular file `path`, as `read_text_file` reads it; FileRefusedError naming
    the line and column where it is not valid JSON."""
    text = read_text_file(path, max_bytes, "utf-8-sig")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileRefusedError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except (ValueError, RecursionError) as exc:
        raise FileRefusedError(f"not valid JSON ({type(exc).__name__})") from exc


def no_space_left(error: OSError, folder: Path | None = None) -> bool:
    """Whether `error` means the disk (or the user's quota) is full, `folder` being where it was writing.

    numpy reports a write cut short without an errno ("N requested and M written"): with less
    than a megabyte left in `folder`, that is a full disk too.
    """
    if error.errno in {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}:
        return True
    if error.errno is not None or folder is None:
        return False
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False
