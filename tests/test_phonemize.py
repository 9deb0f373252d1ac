"""espeak-ng's phonemes as ARPAbet for the text front end (tacotron2/text/phonemizers.py, scripts/phonemize.py)."""
import re
import shutil

import pytest

from scripts.phonemize import phonemize_lines
from tacotron2.text.phonemizers import PhonemizeError, ipa_word_to_arpabet
from tacotron2.text.phonemizers import espeak_read as phonemize
from tacotron2.text import sequence_to_text, symbols, text_to_sequence


def test_ipa_words_map_to_arpabet_with_stress_on_the_vowels():
    assert ipa_word_to_arpabet("m_j_uː_z_ˈiə_m") == ["M", "Y", "UW0", "Z", "IY1", "AH0", "M"]
    assert ipa_word_to_arpabet("dʒ_ˈʌ_dʒ") == ["JH", "AH1", "JH"]
    assert ipa_word_to_arpabet("k_ˈɑːɹ") == ["K", "AA1", "R"]
    assert ipa_word_to_arpabet("b_ˈʌ_ʔ_n̩") == ["B", "AH1", "T", "AH0", "N"]
    assert ipa_word_to_arpabet("s_ˌoʊ") == ["S", "OW2"]
    with pytest.raises(PhonemizeError, match="unknown espeak-ng phoneme"):
        ipa_word_to_arpabet("q_ˈa")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_every_phoneme_of_a_sentence_reaches_the_model_and_clauses_keep_their_marks():
    text = "The museum closes at six, so we should hurry along?"
    ph = phonemize(text)
    assert ph.count(", ") == 1 and ph.endswith("?") and ph.startswith("{DH")
    sequence = text_to_sequence(ph, ["english_cleaners"])
    # nothing dropped: the symbols map back to the same text (an unknown ARPAbet symbol would vanish silently)
    assert sequence_to_text(sequence) == ph
    phonemes = sum(len(group.split()) for group in re.findall(r"\{(.+?)\}", ph))
    assert sum(symbols[i].startswith("@") for i in sequence) == phonemes > 20


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_filelist_lines_keep_their_paths_and_phrase_lines_are_rewritten_whole():
    out = phonemize_lines(["wavs/a.wav|Hello there.|extra", "Good morning!", ""], jobs=2)
    assert out[0].startswith("wavs/a.wav|{HH") and out[0].endswith(".|extra")
    assert out[1].startswith("{G") and out[1].endswith("!") and out[2] == ""


def test_a_phoneme_outside_the_table_is_reported_with_its_line(monkeypatch):
    import scripts.phonemize as ph

    def fake_phonemize(text, voice, exe):  # espeak-ng's output for the second line holds an unknown phoneme
        return " ".join(ipa_word_to_arpabet("q_ˈa" if text == "bad" else "ɡ_ˈʊ_d"))
    monkeypatch.setattr(ph, "require", lambda tool: "espeak-ng")
    monkeypatch.setattr(ph, "espeak_read", fake_phonemize)
    with pytest.raises(PhonemizeError, match="unknown espeak-ng phoneme") as caught:
        phonemize_lines(["good", "bad", "good"], jobs=2)
    assert caught.value.line == 2
