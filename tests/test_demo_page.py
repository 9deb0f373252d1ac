"""The demo's evaluation outputs and its static page, opened in a real (headless) Chromium."""
import json
import os
import shutil

import pytest
import soundfile
import torch

from common.checkpoint import save_training_checkpoint
from common.cpu.linear import int8_available
from common.dllog import RunLogger
from scripts import demo_page, evaluate_tacotron2
from tacotron2.model import Tacotron2
from waveglow.model import WaveGlow

from .browser import check_page, find_chromium
from .conftest import TINY_TACOTRON2, TINY_WAVEGLOW


@pytest.fixture(scope="module")
def demo_out(corpus, tmp_path_factory):
    """An OUT folder as demo.sh leaves it, from tiny random-weight models: two held-out sentences evaluated with
    both vocoders and their wavs, and training logs."""
    out = str(tmp_path_factory.mktemp("demo"))
    torch.manual_seed(0)
    paths = {}
    configs = {"Tacotron2": {**TINY_TACOTRON2, "n_mel_channels": 80, "max_decoder_steps": 30, "gate_threshold": 2.0},
               "WaveGlow": {**TINY_WAVEGLOW, "n_mel_channels": 80}}
    for name, cls in (("Tacotron2", Tacotron2), ("WaveGlow", WaveGlow)):
        paths[name] = os.path.join(out, f"{name}.pt")
        save_training_checkpoint(paths[name], model=cls(**configs[name]), model_name=name, config=configs[name],
                                 epoch=0, iteration=0)
    for model in ("tacotron2", "waveglow"):
        logger = RunLogger(os.path.join(out, model, "nvlog.json"), stdout=False)
        for epoch in range(3):
            logger.log((epoch,), {"train_loss": 5.0 - epoch, "val_loss": 5.5 - epoch, "val_mcd_dtw": 60.0 - epoch,
                                  "val_contrast": 0.7 + 0.05 * epoch})
        logger.close()
    assert evaluate_tacotron2.main([
        "--tacotron2", paths["Tacotron2"], "--waveglow", paths["WaveGlow"], "-d", corpus,
        "--filelist", os.path.join(corpus, "filelists", "espeak_audio_text_val_filelist.txt"),
        "-o", os.path.join(out, "eval"), "--limit", "2", "--audio", "--griffin-lim-iters", "4"]) == 0
    return out


def test_evaluation_writes_every_wav_and_picture_with_the_vocoders_figures(demo_out):
    with open(os.path.join(demo_out, "eval", "metrics.json")) as f:
        result = json.load(f)
    assert len(result["sentences"]) == 2
    for row in result["sentences"]:
        for suffix in ("_teacher.wav", "_griffin_lim.wav", "_waveglow.wav"):
            assert os.path.getsize(os.path.join(demo_out, "eval", row["id"] + suffix)) > 1000
        assert os.path.exists(os.path.join(demo_out, "eval", f"sentence_{row['id']}.png"))
    keys = {"teacher_griffin_lim", "model_griffin_lim", "teacher_waveglow", "model_waveglow"}
    assert set(result["calibration"]) == keys and all(set(r["signals"]) == keys for r in result["sentences"])
    assert result["calibration"]["model_waveglow"]["label"] == "the model + WaveGlow"
    # the teacher's own mel through Griffin-Lim is far closer to the teacher than a random model's mel
    gl_floor = sum(r["signals"]["teacher_griffin_lim"]["mcd_dtw"] for r in result["sentences"])
    assert gl_floor < sum(r["signals"]["model_griffin_lim"]["mcd_dtw"] for r in result["sentences"])


@pytest.mark.skipif(not int8_available(), reason="this torch build has no x86/fbgemm quantized engine")
def test_evaluation_through_the_int8_decoder_measures_what_it_costs(demo_out, corpus, tmp_path):
    """--decoder qint8 decodes the held-out sentences with int8 LSTM matrices: the same lengths, MCD within a
    few percent of float32's (and not equal: the int8 path really ran)."""
    summaries = {}
    for decoder in ("float32", "qint8"):
        out = str(tmp_path / decoder)
        assert evaluate_tacotron2.main([
            "--tacotron2", os.path.join(demo_out, "Tacotron2.pt"), "-d", corpus, "--decoder", decoder,
            "--filelist", os.path.join(corpus, "filelists", "espeak_audio_text_val_filelist.txt"),
            "-o", out, "--limit", "2", "--no-plots", "--deterministic"]) == 0
        with open(os.path.join(out, "metrics.json")) as f:
            summaries[decoder] = json.load(f)["sentences"]
    for a, b in zip(summaries["float32"], summaries["qint8"]):
        assert a["frames"] == b["frames"] and a["mcd_dtw"] != b["mcd_dtw"]
        assert b["mcd_dtw"] == pytest.approx(a["mcd_dtw"], rel=0.05)


@pytest.mark.skipif(not int8_available(), reason="this torch build has no x86/fbgemm quantized engine")
def test_evaluation_through_the_int8_waveglow_writes_what_the_listeners_judge(demo_out, corpus, tmp_path):
    """--waveglow-dtype qint8 vocodes with int8 coupling networks: its wavs within 20 dB SNR of float32's and not
    equal to them (the int8 products really ran), so that the listeners' rows judge that path."""
    torch.manual_seed(0)
    config = {**TINY_WAVEGLOW, "n_mel_channels": 80}
    waveglow = WaveGlow(**config)
    for wn in waveglow.WN:  # a trained coupling is not the identity that a new model's zero end layer gives
        torch.nn.init.normal_(wn.end.weight, std=0.05)
    path = str(tmp_path / "WaveGlow.pt")
    save_training_checkpoint(path, model=waveglow, model_name="WaveGlow", config=config, epoch=0, iteration=0)
    wavs = {}
    for dtype in ("float32", "qint8"):
        out = str(tmp_path / dtype)
        torch.manual_seed(1)  # WaveGlow's latent draws: the same in both runs
        assert evaluate_tacotron2.main([
            "--tacotron2", os.path.join(demo_out, "Tacotron2.pt"), "--waveglow", path, "-d", corpus,
            "--filelist", os.path.join(corpus, "filelists", "espeak_audio_text_val_filelist.txt"), "--audio",
            "-o", out, "--limit", "1", "--no-plots", "--deterministic", "--griffin-lim-iters", "2",
            "--waveglow-dtype", dtype]) == 0
        wav = [f for f in os.listdir(out) if f.endswith("_waveglow.wav")]
        assert len(wav) == 1
        wavs[dtype] = torch.from_numpy(soundfile.read(os.path.join(out, wav[0]))[0])
    a, b = wavs["float32"], wavs["qint8"]
    snr = 10 * torch.log10(a.pow(2).sum() / (a - b).pow(2).sum())
    assert a.shape == b.shape and 20 < snr < 90


def test_the_page_names_every_file_and_reads_the_curves(demo_out):
    page = demo_page.write_page(demo_out)
    with open(page, encoding="utf-8") as f:
        text = f.read()
    assert text.count("<audio") == 6 and "curves.png" in text
    curves = demo_page.read_curves(os.path.join(demo_out, "tacotron2", "nvlog.json"))
    assert [v for _, v in curves["val_mcd_dtw"]] == [60.0, 59.0, 58.0]


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (bash scripts/setup.sh installs Debian's chromium)")
def test_the_page_loads_in_chromium_with_no_error_and_every_file_resolves(demo_out, tmp_path):
    page = demo_page.write_page(demo_out)
    report = check_page(page)
    assert report["errors"] == [] and report["broken"] == []
    assert report["audios"] == 6 and report["images"] == 3  # the curves and one picture per sentence
    # and the check can fail: a copy of the page with one wav gone reports it
    broken = str(tmp_path / "broken")
    shutil.copytree(demo_out, broken)
    victim = sorted(f for f in os.listdir(os.path.join(broken, "eval")) if f.endswith("_waveglow.wav"))[0]
    os.remove(os.path.join(broken, "eval", victim))
    with open(page, encoding="utf-8") as f:
        text = f.read()
    with open(os.path.join(broken, "index.html"), "w", encoding="utf-8") as f:
        f.write(text)  # the page as written before the file went missing
    report = check_page(os.path.join(broken, "index.html"))
    assert report["broken"] == [f"eval/{victim}"] and report["errors"]


def test_curves_set_apart_validations_where_sentences_reached_the_step_cap():
    """A first validation where every sentence runs to the cap scores a deceptively low MCD: not on the line."""
    curve = {"val_mcd_dtw": [(0.5, 49.7), (1.0, 78.2), (1.5, 70.0)],
             "val_contrast": [(0.5, 0.7), (1.0, 0.8), (1.5, 0.8)],
             "val_reached_max": [(0.5, 10.0), (1.0, 0.0), (1.5, 2.0)], "val_loss": [(0.5, 3.0), (1.0, 2.0), (1.5, 1.5)]}
    kept, capped = demo_page.split_capped(curve, "val_mcd_dtw")
    assert kept == [(1.0, 78.2)] and capped == [(0.5, 49.7), (1.5, 70.0)]
    assert demo_page.split_capped(curve, "val_contrast")[1] == [(0.5, 0.7), (1.5, 0.8)]
    assert demo_page.split_capped(curve, "val_loss") == (curve["val_loss"], [])  # losses are not synthesis
    assert demo_page.split_capped({"val_mcd_dtw": [(1.0, 5.0)]}, "val_mcd_dtw") == ([(1.0, 5.0)], [])  # WaveGlow


def test_targets_compare_the_model_with_the_calibration_rows_measured_the_same_way():
    row = lambda **kw: {"label": "x", **kw}  # noqa: E731
    result = {"summary": {"stop_within_10pct": 1.0, "reached_max": 0, "staircase": 0},
              "calibration": {"teacher_griffin_lim": row(wer=0.16, ovrl=1.99, mcd_dtw=7.4),
                              "hum": row(wer=0.94, ovrl=1.33, mcd_dtw=33.6),
                              "flite_slt": row(wer=0.26, ovrl=2.65, mcd_dtw=36.2),
                              "model_griffin_lim": row(wer=0.25, ovrl=1.70, mcd_dtw=34.0)}}
    got = {target.split(" ")[0] + " " + target.split(" ")[-1]: met for target, _, met in demo_page.targets(result)}
    assert got == {"recogniser Griffin-Lim": True, "DNSMOS Griffin-Lim": False, "MCD-DTW voice's": True,
                   "MCD-DTW hum's": False, "stop %": True, "none cap": True, "character-level staircase)": True}
