"""train.py with a fault injected on one rank, for the multi-process tests.

TACOTRON2_TEST_FAIL_RANK=r: rank r raises at iteration 2 (the others must be stopped).
TACOTRON2_TEST_NAN_RANK=r (and TACOTRON2_TEST_NAN_AT=i, default 1): rank r's loss is NaN at iteration i
(every rank must skip that step).
"""
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import models  # noqa: E402
import train  # noqa: E402
from tests.corpus import PoisonedLoss  # noqa: E402

if "TACOTRON2_TEST_FAIL_RANK" in os.environ:
    _check = train.check_replicas_in_sync

    def failing_check(model, info, iteration):
        if info.rank == int(os.environ["TACOTRON2_TEST_FAIL_RANK"]) and iteration == 2:
            raise RuntimeError(f"injected failure on rank {info.rank}")
        return _check(model, info, iteration)

    train.check_replicas_in_sync = failing_check
    sys.argv.append("--check-replicas")

if "TACOTRON2_TEST_NAN_RANK" in os.environ:
    _package = models.package("Tacotron2")
    nan_rank, nan_at = int(os.environ["TACOTRON2_TEST_NAN_RANK"]), int(os.environ.get("TACOTRON2_TEST_NAN_AT", "1"))

    def poisoned(args):
        return PoisonedLoss(_package.loss(args), lambda i: i == nan_at and int(os.environ["RANK"]) == nan_rank,
                            float("nan"))

    models.MODELS["Tacotron2"] = dataclasses.replace(_package, loss=poisoned)

sys.exit(train.main())
