"""Batch sampling: length-bucketed distributed batches (less padding), and resuming mid-epoch."""
from typing import Iterable, Iterator, List, Sequence

import torch


class BucketBatchSampler(torch.utils.data.Sampler):
    """Shuffles the items each epoch (seed + epoch), sorts runs of `bucket` batches by length, cuts them
    into batches, and deals each step's batches to the ranks from neighbouring batches of one sorted run:
    under DDP a step waits for its slowest rank, so the ranks' batches of one step have similar lengths.
    The steps are shuffled; every rank gets the same number. Deterministic for (seed, epoch), so resuming
    reproduces it.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0, bucket: int = 32, drop_last: bool = True) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.bucket = bucket
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _steps(self) -> List[List[List[int]]]:
        """The epoch's steps, each a list of one batch per rank."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g).tolist()
        span = self.batch_size * self.bucket
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start:start + span], key=lambda i: self.lengths[i])
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        n = self.num_replicas
        steps = [batches[i:i + n] for i in range(0, len(batches) - len(batches) % n, n)]  # neighbours, sorted
        perm = torch.randperm(len(steps), generator=g).tolist()
        return [steps[i] for i in perm]

    def __iter__(self) -> Iterator[List[int]]:
        return iter([step[self.rank] for step in self._steps()])

    def __len__(self) -> int:
        return len(self._steps())


class ResumableBatchSampler(torch.utils.data.Sampler):
    """Yields a batch sampler's batches, leaving out the first `skip` of the next epoch.

    A run resumed at batch k of an epoch goes on with the same batches as the interrupted run without
    loading the k it has already trained on (the data loader never sees them). `len` stays the whole
    epoch's; `skip` is cleared after one epoch.
    """

    def __init__(self, batches: Iterable[List[int]]) -> None:
        self.batches = batches
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)
        elif hasattr(getattr(self.batches, "sampler", None), "set_epoch"):
            self.batches.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[List[int]]:
        skip, self.skip = self.skip, 0
        for i, batch in enumerate(self.batches):
            if i >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.batches)
