"""Small tensor helpers shared by models, losses and the inference engines."""
import torch


def mask_from_lengths(lengths: torch.Tensor, max_len: int = None) -> torch.Tensor:
    """Boolean mask of valid positions, (B,) -> (B, max_len), True where t < lengths[b].

    max_len defaults to max(lengths), as in the reference.
    """
    if max_len is None:
        max_len = int(lengths.max())
    ids = torch.arange(max_len, device=lengths.device)
    return ids[None, :] < lengths[:, None]


class ParameterVersions:
    """Remembers a module's parameters (storage and in-place version counters) to tell when they changed.

    Prepared copies of weights (the fast inference engines) are snapshots: `check` refuses to use one
    after an optimizer step, `load_state_dict`, `.to()` or `.half()` changed what it was built from.
    """

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.key = self._key()

    def _key(self) -> tuple:
        return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self.module.parameters())

    def check(self, what: str) -> None:
        if self._key() != self.key:
            raise RuntimeError(f"{what} was built from weights that have changed since: build it again "
                               f"from the model as it is now")
