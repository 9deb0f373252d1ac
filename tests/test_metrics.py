"""The quality metrics on known inputs: they must tell speech from an averaged hum and characters from words."""
import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from tacotron2 import metrics


def _mel(seed=0, T=120):
    rng = np.random.default_rng(seed)
    formants = np.cumsum(rng.normal(0, 0.4, (80, T)), axis=1) * 0.2
    return np.log(np.exp(formants - 6) + 1e-5).astype(np.float32)


def test_identical_mels_score_zero_distortion_and_full_contrast():
    mel = _mel()
    assert metrics.mcd_dtw(mel, mel) == pytest.approx(0.0, abs=1e-9)
    assert metrics.contrast_ratio(mel, mel) == pytest.approx(1.0)


def test_a_blurred_mel_has_low_contrast_and_a_large_distortion():
    mel = _mel()
    blurred = uniform_filter(mel, size=(25, 9), mode="nearest")
    assert metrics.contrast_ratio(blurred, mel) < 0.8
    assert metrics.mcd_dtw(blurred, mel) > 3 * metrics.mcd_dtw(mel + 0.05, mel)


def _alignment(peaks, n_symbols):
    a = torch.zeros(len(peaks), n_symbols)
    a[torch.arange(len(peaks)), torch.tensor(peaks)] = 1.0
    return a


def test_a_word_level_staircase_is_flagged_and_a_character_level_alignment_is_not():
    staircase = [7 * (t // 10) for t in range(60)]  # ten steps on a symbol, then seven symbols on
    g = metrics.attention_granularity(_alignment(staircase, 42))
    assert g == {"longest_stay": 10, "largest_jump": 7}
    assert metrics.is_staircase(g, 42, 60)
    characters = [int(t / 1.5) for t in range(63)]  # 1.5 steps a symbol, one symbol at a time
    g = metrics.attention_granularity(_alignment(characters, 42))
    assert g["largest_jump"] == 1 and not metrics.is_staircase(g, 42, 63)
    assert metrics.diagonality(_alignment(characters, 42)) > 0.95  # both look diagonal: diagonality cannot tell
    assert metrics.diagonality(_alignment(staircase, 42)) >= 0.95


def test_teacher_forced_error_is_the_postnet_mse(corpus):
    from common.audio import AudioConfig
    from tacotron2.data_function import TextMelLoader
    from tacotron2.model import Tacotron2
    from .conftest import TINY_TACOTRON2
    import os
    dataset = TextMelLoader(corpus, os.path.join(corpus, "filelists", "espeak_audio_text_val_filelist.txt"),
                            AudioConfig(), ["english_cleaners"])
    text, mel, _ = dataset[0]
    model = Tacotron2(**{**TINY_TACOTRON2, "n_mel_channels": 80}).eval()
    model.set_modes(prenet_dropout=False)
    err = metrics.teacher_forced_error(model, text, mel)
    with torch.no_grad():
        out = model((text[None].long(), torch.tensor([len(text)]), mel[None], mel.size(1), torch.tensor([mel.size(1)])))
    assert err == pytest.approx(float(((out[1][0] - mel) ** 2).mean()), rel=1e-5) and err > 0


def test_calibration_orders_the_references_and_a_hum_fails(corpus):
    """On espeak sentences: the vocoder floor < another voice of the synthesiser < an averaged hum, and the hum's
    contrast is low. A metric that a humming model passes would be broken."""
    import os
    from common.audio import AudioConfig, load_wav
    from common.layers import TacotronSTFT
    from evaluation import wav_mel
    from corpora.voices import espeak_say
    from vocoders import GriffinLimVocoder
    audio = AudioConfig()
    stft = TacotronSTFT(**audio.stft_kwargs())
    gl = GriffinLimVocoder(AudioConfig(), torch.device("cpu"), n_iters=30)
    with open(os.path.join(corpus, "filelists", "espeak_audio_text_train_filelist.txt")) as f:
        lines = [line.strip().split("|") for line in f][:3]
    rows = {"floor": [], "en-gb": [], "hum": []}
    for rel, text in lines:
        teacher = wav_mel(load_wav(os.path.join(corpus, rel), 22050), stft)
        espeak_say(text, os.path.join(corpus, "gb.wav"), 22050, voice="en-gb")
        hum = uniform_filter(teacher, size=(9, 15), mode="nearest")
        for name, wav in (("floor", gl(torch.from_numpy(teacher)[None], torch.tensor([teacher.shape[1]]))[0]),
                          ("en-gb", load_wav(os.path.join(corpus, "gb.wav"), 22050)),
                          ("hum", gl(torch.from_numpy(hum)[None], torch.tensor([hum.shape[1]]))[0])):
            mel = wav_mel(wav, stft)
            rows[name].append((metrics.mcd_dtw(mel, teacher), metrics.contrast_ratio(mel, teacher)))
    mean = {k: np.mean(v, axis=0) for k, v in rows.items()}
    assert mean["floor"][0] < mean["en-gb"][0] < mean["hum"][0]
    assert mean["hum"][1] < 0.9 < mean["floor"][1]


class _CopyPreviousFrame(torch.nn.Module):
    """A 'decoder' that only extends its previous frame: the cause of an averaged hum when it runs free."""
    n_frames_per_step = 1

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs):
        _, _, mels, _, _ = inputs  # (1, n_mel, T) previous frames as given
        shifted = torch.cat([mels[:, :, :1], mels[:, :, :-1]], dim=2)
        return shifted, shifted, None, None


def test_the_text_only_error_fails_a_decoder_that_copies_its_previous_frame():
    mel = torch.from_numpy(_mel(T=200))
    text = torch.arange(10)
    copier = _CopyPreviousFrame()
    teacher_forced = metrics.teacher_forced_error(copier, text, mel)
    text_only = metrics.text_only_error(copier, text, mel)
    band_mean_error = float(((mel - mel.mean(dim=1, keepdim=True)) ** 2).mean())
    assert teacher_forced < 0.1 * band_mean_error  # looks excellent teacher-forced ...
    assert text_only == pytest.approx(band_mean_error, rel=1e-5)  # ... and says nothing from the text


def test_a_dead_prenet_is_reported_and_a_fresh_one_is_not():
    """The demo's recipe on seed 2 killed every unit of the prenet's first layer in its first epochs; the decoder
    then hears nothing of its previous frame (its teacher-forced error is its text-only error)."""
    from tacotron2.model import Tacotron2
    from .conftest import TINY_TACOTRON2
    torch.manual_seed(0)
    model = Tacotron2(**{**TINY_TACOTRON2, "n_mel_channels": 80}).eval()
    sentences = [(torch.arange(12), torch.from_numpy(_mel(seed, T=60))) for seed in range(3)]  # log-mels < 0
    values, problems = metrics.health(model, sentences)
    assert values["val_prenet_alive"] > 0.25 and problems == []
    with torch.no_grad():  # every weight positive, every input frame negative: no unit ever fires
        model.decoder.prenet.layers[0].linear_layer.weight.abs_()
    values, problems = metrics.health(model, sentences)
    assert values["val_prenet_alive"] == 0
    assert len(problems) == 1 and "0 of the 16 units of its layer 1" in problems[0] and "--warmup-steps" in problems[0]
    text, mel = sentences[0]
    assert metrics.teacher_forced_error(model, text, mel) == metrics.text_only_error(model, text, mel)


def _same_scores(one: dict, two: dict) -> bool:
    """The same transcript and the same figures (to float rounding: DNSMOS's threads differ between processes)."""
    return one.keys() == two.keys() and all(one[k] == two[k] if isinstance(one[k], str)
                                            else one[k] == pytest.approx(two[k], rel=1e-5) for k in one)


def test_judging_in_two_processes_scores_and_writes_what_one_does(corpus, tmp_path):
    """The held-out judging split over two processes (the demo's 48 sentences take two cores): every score and every
    wav is the one process's, WaveGlow's noise included (each sentence seeded by its index, not by its process)."""
    import os
    from common.audio import AudioConfig, load_wav
    from common.checkpoint import ModelCard
    from common.layers import TacotronSTFT
    from evaluation import Judging, Teacher, judge_sentences, wav_mel
    import models
    audio = AudioConfig()
    stft = TacotronSTFT(**audio.stft_kwargs())
    with open(os.path.join(corpus, "filelists", "espeak_audio_text_train_filelist.txt")) as f:
        lines = [line.strip().split("|") for line in f][:3]
    teachers = [Teacher(wav, wav_mel(wav, stft)) for wav in (load_wav(os.path.join(corpus, rel), 22050)
                                                             for rel, _ in lines)]
    rows = [{"id": f"S{i}", "mel": torch.from_numpy(uniform_filter(t.mel, size=(3, 3), mode="nearest"))}
            for i, t in enumerate(teachers)]
    texts = [text for _, text in lines]
    waveglow, _ = models.random_waveglow(n_channels=16)
    results = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        os.makedirs(out)
        judging = Judging(listen=True, audio_dir=str(out), jobs=jobs, griffin_lim_iters=4, sigma=0.6)
        results[jobs] = judge_sentences(rows, teachers, texts, texts, ModelCard("model.pt", audio), judging, waveglow)
    assert sorted(results[1]) == ["model_griffin_lim", "model_waveglow", "teacher_griffin_lim", "teacher_waveglow"]
    for key, scores in results[1].items():
        assert len(scores) == 3
        assert all(_same_scores(one, two) for one, two in zip(scores, results[2][key])), key
    for name in sorted(os.listdir(tmp_path / "jobs1")):  # the same noise; float rounding of other thread counts
        one, two = (load_wav(str(tmp_path / jobs / name), 22050) for jobs in ("jobs1", "jobs2"))
        assert one.shape == two.shape and (one - two).abs().max() < 1e-3, name
    assert len(os.listdir(tmp_path / "jobs2")) == 3 * 3  # teacher, Griffin-Lim, WaveGlow for each sentence
    # a model's rows alone (the listeners' curve: the floor is the held-out judging's), scored the same
    alone = judge_sentences(rows, teachers, texts, texts, ModelCard("model.pt", audio),
                            Judging(listen=True, floor=False, jobs=1, griffin_lim_iters=4, sigma=0.6), waveglow)
    assert sorted(alone) == ["model_griffin_lim", "model_waveglow"]
    for key, scores in alone.items():
        assert all(_same_scores(one, two) for one, two in zip(scores, results[1][key])), key
