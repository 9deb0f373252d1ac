"""train.py with a failure injected on one rank (TACOTRON2_TEST_FAIL_RANK), for the multiproc test."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train  # noqa: E402

_step = train.check_replicas_in_sync


def failing_step(model, info, iteration):
    if info.rank == int(os.environ["TACOTRON2_TEST_FAIL_RANK"]) and iteration == 2:
        raise RuntimeError(f"injected failure on rank {info.rank}")
    return _step(model, info, iteration)


train.check_replicas_in_sync = failing_step
sys.argv.append("--check-replicas")
sys.exit(train.main())
