"""Alignment and spectrogram pictures (matplotlib, headless)."""
from typing import Optional

import torch


def alignment_figure(alignment: torch.Tensor, mel: torch.Tensor, title: str):
    """A matplotlib figure: attention (steps, T_in) above the mel (n_mel, T_out)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 1, figsize=(8, 6))
    axes[0].imshow(alignment.detach().float().cpu().T.numpy(), aspect="auto", origin="lower", interpolation="none")
    axes[0].set(xlabel="decoder step", ylabel="encoder step", title=title[:80])
    axes[1].imshow(mel.detach().float().cpu().numpy(), aspect="auto", origin="lower", interpolation="none")
    axes[1].set(xlabel="frame", ylabel="mel channel")
    fig.tight_layout()
    return fig


def plot_alignment(alignment: torch.Tensor, mel: torch.Tensor, path: str, title: str) -> None:
    """Attention above the mel, saved as a PNG."""
    import matplotlib.pyplot as plt
    fig = alignment_figure(alignment, mel, title)
    fig.savefig(path)
    plt.close(fig)


def mel_pair_figure(teacher: torch.Tensor, mel: torch.Tensor, teacher_name: str = "teacher", mel_name: str = "model",
                    alignment: Optional[torch.Tensor] = None, title: str = ""):
    """A matplotlib figure: the teacher's mel (n_mel, T) above another (n_mel, T') on one colour scale and one time
    axis, and the attention (steps, T_in) below them when given."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    teacher, mel = teacher.detach().float().cpu(), mel.detach().float().cpu()
    lo, hi = float(teacher.min()), float(teacher.max())
    fig, axes = plt.subplots(2 if alignment is None else 3, 1, figsize=(8, 5.5 if alignment is None else 8))
    for ax, m, name in ((axes[0], teacher, f"{teacher_name}: {title[:70]}" if title else teacher_name),
                        (axes[1], mel, mel_name)):
        ax.imshow(m.numpy(), aspect="auto", origin="lower", interpolation="none", vmin=lo, vmax=hi)
        ax.set(ylabel="mel channel", title=name)
        ax.set_xlim(-0.5, max(teacher.size(1), mel.size(1)) - 0.5)  # one time axis: a short mel shows as short
    axes[1].set(xlabel="frame")
    if alignment is not None:
        axes[2].imshow(alignment.detach().float().cpu().T.numpy(), aspect="auto", origin="lower",
                       interpolation="none")
        axes[2].set(xlabel="decoder step", ylabel="encoder step", title="attention")
    fig.tight_layout()
    return fig


def plot_comparison(teacher: torch.Tensor, mel: torch.Tensor, alignment: torch.Tensor, path: str, title: str) -> None:
    """The teacher's and the model's mels and the attention (mel_pair_figure), saved as a PNG."""
    import matplotlib.pyplot as plt
    fig = mel_pair_figure(teacher, mel, "teacher", "model", alignment, title)
    fig.savefig(path)
    plt.close(fig)
