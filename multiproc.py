"""Start one training process per GPU (or --nproc-per-node N on CPU with gloo):
`python -m multiproc train.py ARGS...`.

Ctrl-C (or SIGTERM to this launcher) is passed on to every worker once: each finishes its step,
saves a checkpoint and exits; a second Ctrl-C stops them at once.

It sets the variables torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and
watches the workers: when one fails, the others are stopped and its exit code is returned, so a
dead rank never leaves the rest hanging. For several machines use torchrun directly.
"""
import argparse
import os
import signal
import subprocess
import sys
import time
from typing import List

from common.training.dist_utils import free_port
from common.flag_types import COUNT, PORT


def _worker_setup() -> None:
    """In the worker, before it runs: a new session, and on Linux SIGTERM when the launcher dies (a
    launcher killed with SIGKILL cannot forward anything; the workers then save and stop by themselves)."""
    os.setsid()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def default_nproc() -> int:
    try:
        import torch
        return max(torch.cuda.device_count(), 1)
    except ImportError:
        return 1


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc-per-node", type=COUNT, default=None, help="processes (default: one per GPU, or 1)")
    parser.add_argument("--master-port", type=PORT, default=None, help="rendezvous port on 127.0.0.1")
    parser.add_argument("script", help="training script, e.g. train.py")
    parser.add_argument("script_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    nproc = args.nproc_per_node or default_nproc()
    port = args.master_port or free_port()
    workers = []
    for rank in range(nproc):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                   LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        # each worker in a session of its own: a Ctrl-C in the terminal reaches this launcher only, which
        # forwards it once (in the terminal's process group every worker would get it twice: from the
        # terminal and from us, and the second SIGINT stops a worker at once, without a checkpoint)
        workers.append(subprocess.Popen([sys.executable, args.script] + args.script_args, env=env,
                                        preexec_fn=_worker_setup))

    def forward_signal(signum, frame):
        for w in workers:
            if w.poll() is None:
                w.send_signal(signum)

    signal.signal(signal.SIGTERM, forward_signal)
    signal.signal(signal.SIGINT, forward_signal)
    failed = None
    while any(w.poll() is None for w in workers):
        for rank, w in enumerate(workers):
            if w.poll() not in (None, 0) and failed is None:
                failed = (rank, w.returncode)
                print(f"multiproc: rank {rank} exited with code {w.returncode}; stopping the other ranks",
                      file=sys.stderr)
                for other in workers:
                    if other.poll() is None:
                        other.terminate()
                deadline = time.time() + 10
                while time.time() < deadline and any(o.poll() is None for o in workers):
                    time.sleep(0.1)
                for other in workers:
                    if other.poll() is None:
                        other.kill()
        time.sleep(0.2)
    if failed is None:
        failed = next(((r, w.returncode) for r, w in enumerate(workers) if w.returncode != 0), None)
    return 0 if failed is None else (failed[1] if failed[1] > 0 else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
