"""Alignment and spectrogram pictures (matplotlib, headless)."""
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
