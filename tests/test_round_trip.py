"""scripts/waveglow_round_trip.py: recordings through a WaveGlow and back, judged per fast-path dtype."""
import torch

from common.checkpoint import save_training_checkpoint
from common.cpu.linear import int8_available
from scripts import waveglow_round_trip
from waveglow.fast_inference import FastWaveGlow
from waveglow.model import WaveGlow

from .conftest import TINY_WAVEGLOW

CONFIG = {**TINY_WAVEGLOW, "n_mel_channels": 80}


def _waveglow() -> WaveGlow:
    torch.manual_seed(0)
    model = WaveGlow(**CONFIG).eval()
    for wn in model.WN:  # not the identity coupling of a new model
        torch.nn.init.normal_(wn.end.weight, std=0.05)
    return model


def test_the_latent_as_noise_makes_infer_invert_forward():
    """forward's z laid out as infer's draws gives the audio back (float32 rounding), so any difference a fast path
    makes in the round trip is the fast path's."""
    model = _waveglow()
    mel, audio = torch.randn(1, 80, 6) - 4, torch.randn(1, 6 * 256) * 0.1
    with torch.no_grad():
        z, _, _ = model.double()((mel.double(), audio.double()))
        model.float()
        back = FastWaveGlow(model, torch.float32).infer(mel, sigma=1.0,
                                                       noise=waveglow_round_trip.latent_as_noise(model, z))
        wrong_order = FastWaveGlow(model, torch.float32).infer(mel, sigma=1.0, noise=[
            n.flip(1) for n in waveglow_round_trip.latent_as_noise(model, z)])
    assert (back - audio).abs().max() < 1e-4 * audio.abs().max()
    assert (wrong_order - audio).abs().max() > 0.1 * audio.abs().max()


def test_the_round_trip_reports_every_dtype_beside_the_recording(corpus, tmp_path, capsys):
    path = str(tmp_path / "WaveGlow.pt")
    save_training_checkpoint(path, model=_waveglow(), model_name="WaveGlow", config=CONFIG, epoch=0, iteration=0)
    dtypes = ["float32", *(["qint8"] if int8_available() else [])]
    assert waveglow_round_trip.main(["-d", corpus, "--waveglow", path, "--limit", "1", "--dtypes", *dtypes]) == 0
    table = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if "DNSMOS" in line}
    assert set(table) == {"recording", *dtypes}
    snr = {k: float(v.split("SNR vs the recording ")[1].split()[0]) for k, v in table.items() if k != "recording"}
    assert snr["float32"] > 80 and ("qint8" not in snr or 15 < snr["qint8"] < 80)
    # float32 gives the recording back: the listeners hear the same thing
    assert table["float32"].split("SNR")[0].split()[1:] == table["recording"].split()[1:]
