"""One training run per output folder: two runs writing the same checkpoints and log would ruin both.

The main process of a run holds an exclusive lock (flock) on `<output>/.train.lock` while it lives, and writes its
process id, host and command into the file. The kernel drops the lock when the process ends, however it ends, so
a folder left by a killed run is taken over (with a warning naming the old process); a run that still holds it
makes the second one stop before it touches anything, naming the folder and the process.
"""
import fcntl
import os
import socket
import sys
import warnings
from typing import Optional

LOCK_NAME = ".train.lock"


class OutputInUse(RuntimeError):
    pass


class RunLock:
    """Held from `acquire` until `release` or the end of the process."""

    def __init__(self, output_dir: str) -> None:
        self.path = os.path.join(output_dir, LOCK_NAME)
        self._file = None

    def acquire(self) -> Optional[str]:
        """Take the lock; OutputInUse where another live run holds it. Returns what the file said of an earlier
        run that ended without releasing it (None where it was free)."""
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise OutputInUse(f"output folder {os.path.dirname(self.path)!r} is in use by a training run that is "
                              f"still going ({holder}); give another -o, or stop that run first") from None
        f.seek(0)
        stale = f.read().strip() or None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)}\n")
        f.flush()
        self._file = f
        if stale:
            warnings.warn(f"{self.path}: taking over from a run that ended without releasing it ({stale})")
        return stale

    def release(self) -> None:
        """Empty the file (a later run has nothing to warn about) and drop the lock."""
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.close()  # closing the descriptor drops the flock
            self._file = None
