"""inference.py end to end on tiny random-weight checkpoints."""
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import inference
import models
import synthesis
from common.checkpoint import save_training_checkpoint
from common.cpu.linear import int8_available
from tacotron2.model import Tacotron2
from tacotron2.text.frontend import TextFrontend
from vocoders import WaveGlowVocoder
from waveglow.model import WaveGlow

from .conftest import TINY_TACOTRON2, TINY_WAVEGLOW

T2_CONFIG = {**TINY_TACOTRON2, "n_mel_channels": 80, "max_decoder_steps": 20}
WG_CONFIG = {**TINY_WAVEGLOW, "n_mel_channels": 80}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    t2, wg = Tacotron2(**T2_CONFIG), WaveGlow(**WG_CONFIG)
    paths = {}
    for name, model, cfg in (("Tacotron2", t2, T2_CONFIG), ("WaveGlow", wg, WG_CONFIG)):
        paths[name] = str(root / f"{name}.pt")
        save_training_checkpoint(paths[name], model=model, model_name=name, config=cfg, epoch=0, iteration=0)
    # NVIDIA-style file: no config, DDP prefixes (the architecture must be read off the weights)
    paths["published"] = str(root / "waveglow_published.pt")
    torch.save({"state_dict": {"module." + k: v for k, v in wg.state_dict().items()}}, paths["published"])
    return paths


def _phrases(tmp_path, lines, encoding="utf-8"):
    path = tmp_path / "phrases.txt"
    path.write_bytes("\n".join(lines).encode(encoding) + b"\n")
    return str(path)


LINES = ["Hello world.", "", "The 3rd test costs $5, Mr. Smith.", "A much longer sentence that keeps going on.", "Hi."]


@pytest.mark.parametrize("vocoder", ["waveglow", "griffin-lim"])
def test_one_nonsilent_wav_per_nonempty_line(checkpoints, tmp_path, vocoder):
    out = str(tmp_path / "out")
    argv = ["--tacotron2", checkpoints["Tacotron2"], "-i", _phrases(tmp_path, LINES), "-o", out,
            "--griffin-lim-iters", "4", "--suffix", "_x"]
    if vocoder == "waveglow":
        argv += ["--waveglow", checkpoints["WaveGlow"]]
    assert inference.main(argv) == 0
    wavs = sorted(f for f in os.listdir(out) if f.endswith(".wav"))
    assert wavs == ["audio_0_x.wav", "audio_2_x.wav", "audio_3_x.wav", "audio_4_x.wav"]
    for name in wavs:
        data, sr = sf.read(os.path.join(out, name))
        assert sr == 22050 and data.ndim == 1 and data.size > 0
        assert abs(data).max() > 0.5  # peak-normalised, not silent


@pytest.mark.skipif(not int8_available(), reason="this torch build has no x86/fbgemm quantized engine")
def test_waveglow_int8_runs_only_when_asked_and_only_with_waveglow(checkpoints, tmp_path, capsys):
    """--waveglow-int8 vocodes with int8 coupling networks and says so; --amp-run alone never picks int8 for
    WaveGlow (its audio was judged noisier); with another vocoder the flag is refused before any work."""
    phrases = _phrases(tmp_path, ["Hello world."])
    base = ["--tacotron2", checkpoints["Tacotron2"], "-i", phrases, "--waveglow", checkpoints["WaveGlow"]]
    assert inference.main([*base, "-o", str(tmp_path / "int8"), "--waveglow-int8"]) == 0
    assert "waveglow_coupling_ms {'qint8'" in capsys.readouterr().err
    assert os.path.exists(tmp_path / "int8" / "audio_0.wav")
    assert inference.main([*base, "-o", str(tmp_path / "amp"), "--amp-run"]) == 0
    assert "qint8" not in capsys.readouterr().err.split("waveglow_coupling_ms")[1].splitlines()[0]
    with pytest.raises(SystemExit) as err:
        inference.main([*base, "-o", str(tmp_path / "gl"), "--waveglow-int8", "--vocoder", "griffin-lim"])
    assert "--waveglow-int8 applies to WaveGlow; the vocoder is griffin-lim" in str(err.value)
    assert not (tmp_path / "gl").exists()


def test_output_order_and_batching_do_not_change_audio(checkpoints, tmp_path):
    phrases = _phrases(tmp_path, LINES)
    common = ["--tacotron2", checkpoints["Tacotron2"], "-i", phrases, "--deterministic", "--griffin-lim-iters", "3"]
    assert inference.main(common + ["-o", str(tmp_path / "all")]) == 0
    assert inference.main(common + ["-o", str(tmp_path / "one"), "--batch-size", "1"]) == 0
    for i in (0, 2, 3, 4):
        a, _ = sf.read(str(tmp_path / "all" / f"audio_{i}.wav"))
        b, _ = sf.read(str(tmp_path / "one" / f"audio_{i}.wav"))
        assert a.shape == b.shape and abs(a - b).max() < 1e-3, i


def test_synthesizer_batch_equals_items_and_keeps_order(checkpoints):
    t2, _ = models.load_model(checkpoints["Tacotron2"], "Tacotron2", torch.device("cpu"))
    t2.set_modes(prenet_dropout=False)
    synth = synthesis.build_synthesizer(t2, None, torch.device("cpu"), griffin_lim_iters=2)
    phrases = synthesis.read_phrases(_phrases_path(LINES), TextFrontend())
    batch = synth(phrases)
    for b, p in enumerate(phrases):
        single = synth([p])
        assert int(batch["mel_lengths"][b]) == int(single["mel_lengths"][0])
        assert torch.allclose(batch["audio"][b], single["audio"][0], atol=1e-4)


def _phrases_path(lines):
    import tempfile
    fd, path = tempfile.mkstemp(suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    return path


def test_published_waveglow_without_config_loads(checkpoints, tmp_path):
    model, config = models.load_model(checkpoints["published"], "WaveGlow", torch.device("cpu"))
    assert config == WG_CONFIG


@pytest.mark.parametrize("case", ["missing phrases", "non-utf8", "unspeakable line", "missing ckpt",
                                  "wrong model", "corrupt ckpt", "only blank lines"])
def test_bad_inputs_fail_clearly_and_write_nothing(checkpoints, tmp_path, case):
    out = tmp_path / "out"
    phrases = _phrases(tmp_path, ["Fine line.", "Another fine line."])
    t2 = checkpoints["Tacotron2"]
    expected = {"missing phrases": "phrase file not found", "non-utf8": "phrases.txt:2: not UTF-8",
                "unspeakable line": "phrases.txt:2: text '%%%' holds no speakable symbol",
                "missing ckpt": "no such checkpoint file",
                "wrong model": "this is a WaveGlow checkpoint, but a Tacotron2 was expected",
                "corrupt ckpt": "not a readable PyTorch checkpoint", "only blank lines": "no phrases"}[case]
    if case == "missing phrases":
        phrases = str(tmp_path / "nope.txt")
    elif case == "non-utf8":
        phrases = _phrases(tmp_path, ["Fine line.", "Caf\u00e9 cr\u00e8me"], encoding="latin-1")
    elif case == "unspeakable line":
        phrases = _phrases(tmp_path, ["Fine line.", "%%%"])
    elif case == "missing ckpt":
        t2 = str(tmp_path / "none.pt")
    elif case == "wrong model":
        t2 = checkpoints["WaveGlow"]
    elif case == "corrupt ckpt":
        t2 = str(tmp_path / "torn.pt")
        with open(checkpoints["Tacotron2"], "rb") as f:
            data = f.read()
        with open(t2, "wb") as f:
            f.write(data[: len(data) // 3])
    elif case == "only blank lines":
        phrases = _phrases(tmp_path, ["", "   "])
    with pytest.raises(SystemExit) as err:
        inference.main(["--tacotron2", t2, "-i", phrases, "-o", str(out)])
    assert expected in str(err.value)
    assert not out.exists()


def test_reaching_max_decoder_steps_names_the_line(checkpoints, tmp_path, capsys):
    out = str(tmp_path / "out")
    inference.main(["--tacotron2", checkpoints["Tacotron2"], "-i", _phrases(tmp_path, ["First.", "Second one."]),
                    "-o", out, "--gate-threshold", "1.0", "--griffin-lim-iters", "1"])
    err = capsys.readouterr().err
    assert "phrases.txt:1: reached max_decoder_steps=20" in err and "phrases.txt:2: reached" in err


def test_latency_statistics_are_right():
    import test_infer
    stats = test_infer.latency_stats([1.0, 2.0, 3.0, 4.0], [22050, 44100, 22050, 44100], [86, 172, 86, 172], 22050)
    assert stats["avg_latency"] == pytest.approx(2.5)
    assert stats["std_latency"] == pytest.approx(1.1180340)  # the seed's np.std: population
    # the seed's "confidence interval q": the largest of the fastest int(n q) runs
    assert stats["p50"] == pytest.approx(2.0) and stats["p90"] == pytest.approx(3.0)
    assert stats["p100"] == pytest.approx(4.0)
    assert stats["throughput"] == pytest.approx((22050 + 22050 + 7350 + 11025) / 4)  # mean of per-run rates
    assert stats["avg_audio_s"] == pytest.approx(1.5)
    assert stats["avg_rtf"] == pytest.approx((1.0 + 1.0 + 1 / 3 + 0.5) / 4)


def test_latency_script_prints_the_full_table(checkpoints, tmp_path, capsys):
    import test_infer
    phrases = _phrases(tmp_path, ["One phrase here.", "And a second phrase."])
    log = str(tmp_path / "lat.json")
    assert test_infer.main(["--tacotron2", checkpoints["Tacotron2"], "--waveglow", checkpoints["WaveGlow"],
                            "-i", phrases, "-n", "4", "--warmup", "1", "--log-file", log]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    table = out.index("|" + "|".join(test_infer.COLUMNS) + "|")
    cells = out[table + 2].split("|")[1:-1]
    assert len(cells) == len(test_infer.COLUMNS) and cells[0] == "2" and cells[2] == "FP32"
    assert float(cells[3]) > 0 and float(cells[10].replace(",", "")) > 0
    from common.dllog import read_log
    assert len([r for r in read_log(log) if r["type"] == "LOG" and r["step"] and r["step"] != "PARAMETER"]) == 3


def test_long_lines_are_spoken_in_pieces_joined_in_one_wav(checkpoints, tmp_path):
    pieces = ["The first sentence ends here.", "A second one, with a clause.", "And the third."]
    long_line = " ".join(pieces)
    common = ["--tacotron2", checkpoints["Tacotron2"], "--griffin-lim-iters", "2", "--deterministic", "-bs", "2"]
    split_out, alone_out = tmp_path / "split", tmp_path / "alone"
    assert inference.main(common + ["-i", _phrases(tmp_path, ["Hi.", long_line]), "-o", str(split_out),
                                    "--max-phrase-chars", "30", "--pause", "0.1"]) == 0
    (tmp_path / "p").mkdir()
    assert inference.main(common + ["-i", _phrases(tmp_path / "p", pieces), "-o", str(alone_out)]) == 0
    assert sorted(os.listdir(split_out)) == ["audio_0.wav", "audio_1.wav", "nvlog.json"]  # one wav per line
    joined, sr = sf.read(str(split_out / "audio_1.wav"), dtype="float32")
    alone = [sf.read(str(alone_out / f"audio_{i}.wav"), dtype="float32")[0] for i in range(3)]
    pause = np.zeros(int(0.1 * sr), dtype=np.float32)
    expected = np.concatenate([alone[0], pause, alone[1], pause, alone[2]])
    assert joined.shape == expected.shape and np.allclose(joined, expected, atol=1e-4)


def test_split_text_prefers_sentence_then_clause_ends():
    from tacotron2.text.segment import split_text
    text = "One two three. Four five, six seven; eight nine ten eleven twelve thirteen.  Fourteen!"
    for max_chars in (15, 30, 60):
        pieces = split_text(text, max_chars)
        assert " ".join(pieces) == " ".join(text.split())
        assert all(len(p) <= max_chars for p in pieces)
    assert split_text(text, 30) == ["One two three. Four five,", "six seven;",
                                    "eight nine ten eleven twelve", "thirteen. Fourteen!"]
    assert split_text(text, 200) == [" ".join(text.split())]
    assert split_text("x" * 20 + " y", 5) == ["x" * 20, "y"]  # a word longer than the limit stays whole
    with pytest.raises(ValueError):
        split_text(text, 0)


def test_split_text_keeps_arpabet_groups_whole():
    from tacotron2.text import sequence_to_text, text_to_sequence
    from tacotron2.text.segment import split_text
    text = "{DH AH0} {OW1 L D} {S EY1 L ER0} {K AE1 R IY0 D} {AH0} {Y EH1 L OW0} {AH0 M B R EH1 L AH0}."
    pieces = split_text(text, 30)
    assert len(pieces) > 2 and " ".join(pieces) == text
    assert all(p.count("{") == p.count("}") for p in pieces)  # before: '{K AE1' and 'R IY0 D}' apart
    assert sum(len(text_to_sequence(p, ["english_cleaners"])) for p in pieces) \
        == len(text_to_sequence(text, ["english_cleaners"])) - (len(pieces) - 1)  # only the joining spaces go
    assert sequence_to_text(text_to_sequence(pieces[-1], ["english_cleaners"])).endswith("}.")


def test_warmup_runs_every_batch_shape_before_timing(checkpoints, tmp_path, monkeypatch):
    """--include-warmup: CUDA-graph capture and cuDNN choices happen per shape; none may fall in a timed run."""
    calls = []
    real = synthesis.Synthesizer.__call__
    monkeypatch.setattr(synthesis.Synthesizer, "__call__", lambda self, batch: calls.append(len(batch)) or
                        real(self, batch))
    lines = ["Hello world.", "The 3rd test costs $5.", "A longer sentence.", "Hi.", "One more line here."]
    argv = ["--tacotron2", checkpoints["Tacotron2"], "-i", _phrases(tmp_path, lines), "-o", str(tmp_path / "o"),
            "--griffin-lim-iters", "2", "-bs", "2", "--include-warmup"]
    assert inference.main(argv) == 0
    assert calls[:3] == [2, 2, 1] and calls[3:] == [2, 2, 1]  # batches of 2, 2 and 1: each shape warmed first


def test_streamed_pieces_join_into_the_one_shot_audio(checkpoints):
    """Synthesizer.stream yields the audio chunk by chunk as WaveGlow produces it; joined, it is the one-shot audio."""
    cpu = torch.device("cpu")
    t2, _ = models.load_model(checkpoints["Tacotron2"], "Tacotron2", cpu, {"gate_threshold": 2.0})  # 20 frames
    wg, _ = models.load_model(checkpoints["WaveGlow"], "WaveGlow", cpu)
    t2.set_modes(prenet_dropout=False)
    policy = synthesis.precision_policy(cpu, amp=False)
    vocoder = WaveGlowVocoder(wg, cpu, half=False, chunk_frames=6, overlap_frames=2)
    synth = synthesis.Synthesizer(t2, vocoder, cpu, policy)
    phrase = synthesis.read_phrases(_phrases_path(["A phrase to stream."]), TextFrontend())[0]
    torch.manual_seed(0)
    pieces = list(synth.stream(phrase))
    torch.manual_seed(0)
    one_shot = synth([phrase], normalize=False)["audio"][0]
    assert [p.numel() for p in pieces] == [6 * 256, 6 * 256, 6 * 256, 2 * 256]
    assert torch.equal(torch.cat(pieces), one_shot)


def test_latency_script_times_the_first_streamed_chunk(checkpoints, capsys):
    import test_infer
    assert test_infer.main(["--tacotron2", checkpoints["Tacotron2"], "--waveglow", checkpoints["WaveGlow"],
                            "-il", "40", "-n", "3", "--warmup", "1", "--first-chunk", "--log-file", ""]) == 0
    out = capsys.readouterr().out
    first = float(out.split("Time to the first audio chunk, streaming (seconds) = ")[1].split()[0])
    assert first > 0 and "Latency average (seconds) = " in out
