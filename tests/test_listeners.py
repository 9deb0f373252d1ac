"""The slt voice, the listeners that judge speech (pocketsphinx, DNSMOS), on inputs whose answer is known."""
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.ndimage import uniform_filter

from common import listeners
from common.layers import TacotronSTFT
from corpora import voices
from common.audio import AudioConfig
from tacotron2.alignment_targets import symbol_spans
from tacotron2.text import text_to_sequence
from tacotron2.text.symbols import symbols as SYMBOLS
from vocoders import GriffinLimVocoder

SENTENCE = "The museum closes at six, so we should hurry along before the guards lock the doors."
needs_festival = pytest.mark.skipif(shutil.which("text2wave") is None or not os.path.isdir(voices.SLT_VOICE_DIR),
                                    reason="festival's slt voice is not installed (bash scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def slt(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("slt") / "museum.wav")
    spoken = voices.speak("slt", [SENTENCE, "Mrs. Whitfield paid $5.50 on the 3rd of June."],
                          [path, path + ".2.wav"])
    return path, spoken


@needs_festival
def test_slt_speaks_22khz_wavs_with_the_words_and_phonemes_it_spoke(slt):
    path, spoken = slt
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    assert abs(info.duration - spoken[0].seconds) < 0.01 and 3 < info.duration < 8
    assert spoken[0].words == "the museum closes at six, so we should hurry, along before the guards lock the doors."
    assert spoken[0].arpabet.startswith("{DH AH0} {M Y UW0 Z IY1 AH0 M} {K L OW1 Z IH0 Z} {AE1 T} {S IH1 K S}, {S OW1}")
    # festival's own reading of numbers and money, which a transcript must follow
    assert spoken[1].words == "mrs whitfield paid five dollars fifty, on the third of june."
    assert voices.festival_phonemes([SENTENCE])[0][:2] == (spoken[0].words, spoken[0].arpabet)


@needs_festival
def test_slt_says_when_it_spoke_each_phone_on_the_wavs_clock(slt):
    """The segment times festival chose, moved onto the trimmed wav, match the phonemes symbol for symbol and
    put the comma's pause where the recording is quiet."""
    path, spoken = slt
    said = spoken[0]
    symbols = [SYMBOLS[i] for i in text_to_sequence(said.arpabet, ["english_cleaners"])]
    spans = symbol_spans(symbols, said.segments, said.seconds)
    durations = spans[:, 1] - spans[:, 0]
    phones = np.array([s.startswith("@") for s in symbols])
    assert spans[0, 0] == 0 and abs(spans[-1, 1] - said.seconds) < 1e-4 and np.all(np.diff(spans[:, 0]) >= 0)
    assert 0.02 <= durations[phones].min() and durations[phones].max() <= 0.4  # a phone: 20-400 ms
    assert durations[np.array([s == " " for s in symbols])].max() == 0  # a word boundary takes no time
    wav, rate = sf.read(path, dtype="float32")
    comma = symbols.index(",")
    assert durations[comma] > 0.05
    a, b = (int(t * rate) for t in spans[comma])
    vowel = int(np.argmax(durations * phones))
    c, d = (int(t * rate) for t in spans[vowel])
    assert np.sqrt(np.mean(wav[a:b] ** 2)) < 0.1 * np.sqrt(np.mean(wav[c:d] ** 2))


@needs_festival
def test_the_listeners_understand_the_teacher_and_not_a_hum(slt):
    """The slt teacher and its mel through Griffin-Lim are understood word for word; the same mel blurred into an
    averaged hum is not, and DNSMOS ranks the three as a person would."""
    path, spoken = slt
    wav, rate = sf.read(path, dtype="float32")
    stft, gl = TacotronSTFT(), GriffinLimVocoder(AudioConfig(), torch.device("cpu"))
    mel = stft.mel_spectrogram(torch.from_numpy(wav)[None])
    hum = torch.from_numpy(uniform_filter(mel[0].numpy(), size=(9, 15), mode="nearest"))[None]
    said = spoken[0].words
    teacher = listeners.listen(wav, rate, said)
    through_gl = listeners.listen(gl(mel, torch.tensor([mel.size(2)]))[0].numpy(), rate, said)
    hummed = listeners.listen(gl(hum, torch.tensor([hum.size(2)]))[0].numpy(), rate, said)
    assert teacher["heard"] == listeners.normalize_words(said) and teacher["wer"] == 0.0
    assert through_gl["wer"] <= 0.1 and hummed["wer"] >= 0.6 and hummed["cer"] >= 0.5
    assert teacher["ovrl"] > through_gl["ovrl"] + 0.4 > hummed["ovrl"] + 0.4
    assert 1.0 <= hummed["ovrl"] and teacher["ovrl"] <= 5.0


def test_error_rates_and_their_edge_cases():
    assert listeners.error_rates("the cat sat", "The cat, sat!") == {"wer": 0.0, "cer": 0.0}
    assert listeners.error_rates("the hat sat", "the cat sat")["wer"] == pytest.approx(1 / 3)
    assert listeners.error_rates("", "the cat sat") == {"wer": 1.0, "cer": 1.0}
    with pytest.raises(ValueError):
        listeners.error_rates("anything", "")
    quiet = listeners.to_16k(np.full(22050, 0.01), 22050)
    assert quiet.shape == (16000,) and np.isclose(np.abs(quiet).max(), 0.9)


@needs_festival
def test_a_transcript_does_not_depend_on_what_the_recogniser_heard_before(slt):
    """One recogniser kept across utterances carried its noise and cepstral-mean estimates along: the same wavs,
    heard after a burst of noise, were transcribed otherwise. Every wav is heard as if it came first now."""
    path, spoken = slt
    wav, rate = sf.read(path, dtype="float32")
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(3 * rate) * 0.5).astype(np.float32)
    clips = [wav, wav + (rng.standard_normal(len(wav)) * 0.05).astype(np.float32)]  # clear, and hard to hear
    first = [listeners.transcribe(c, rate) for c in clips]
    for clip, heard in zip(clips, first):
        listeners.transcribe(noise, rate)
        listeners.transcribe(noise * 0.01, rate)
        assert listeners.transcribe(clip, rate) == heard
