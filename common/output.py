"""Where an entry point writes, checked before its work: a folder that cannot be written (a read-only mount, no
permission, a path under a file, a file where a folder belongs) is refused at once, naming the flag and the path,
instead of ending in a traceback after minutes of work. A disk that fills part-way is atomic_save's
(common.checkpoint) to report."""
import argparse
import os
import tempfile
from typing import Sequence, Tuple


class OutputError(ValueError):
    """An output path that cannot be written; the message names the flag and the path."""


def _why(error: OSError) -> str:
    if error.errno is not None and os.strerror(error.errno) == "Not a directory":
        return "a part of the path is a file, not a folder"
    return error.strerror or str(error)


def _unwritable(folder: str, make: bool) -> str:
    """Why `folder` cannot be written, or '' when a file could be written in it. A missing folder is made when
    `make`; otherwise its nearest existing ancestor is probed, and nothing is left behind (an entry point refused
    for another reason afterwards has written nothing)."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        return "it is a file, and a folder is needed here (it is made if missing)"
    target = os.path.abspath(folder)
    try:
        if make:
            os.makedirs(target, exist_ok=True)
        while not os.path.exists(target):
            target = os.path.dirname(target)
        if not os.path.isdir(target):
            return "a part of the path is a file, not a folder"
        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return _why(e)
    return ""


def writable_folder(path: str, flag: str = "-o", make: bool = False) -> str:
    """`path` proved writable by writing a file in it (or, missing, in the folder it would be made in; made first
    when `make`); OutputError otherwise."""
    why = _unwritable(path, make)
    if why:
        raise OutputError(f"{flag} {path}: cannot write in this folder: {why}")
    return path


def writable_file(path: str, flag: str) -> str:
    """`path` as a file to (over)write: not a folder, its folder writable (made if missing); OutputError
    otherwise."""
    if os.path.isdir(path):
        raise OutputError(f"{flag} {path}: is a folder, and a file is needed here")
    folder = os.path.dirname(os.path.abspath(path))
    why = _unwritable(folder, make=False)
    if why:
        raise OutputError(f"{flag} {path}: cannot write in its folder {folder}: {why}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputError(f"{flag} {path}: the file exists and cannot be overwritten (no permission)")
    return path


def check_outputs(parser: argparse.ArgumentParser, folders: Sequence[Tuple[str, str]] = (),
                  files: Sequence[Tuple[str, str]] = ()) -> None:
    """An entry point's outputs, as (flag, path) pairs, checked right after its flags: parser.error (exit 2)
    naming the first that cannot be written. Empty paths are skipped (an optional output not asked for)."""
    try:
        for flag, path in folders:
            if path:
                writable_folder(path, flag)
        for flag, path in files:
            if path:
                writable_file(path, flag)
    except OutputError as e:
        parser.error(str(e))
