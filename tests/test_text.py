"""The text front end: symbols, cleaners, numbers, abbreviations, transliteration, ARPAbet."""
import json
import warnings

import pytest

from tacotron2.text import EmptyTextError, sequence_to_text, symbols, text_to_sequence
from tacotron2.text.cleaners import basic_cleaners, clean_text, english_cleaners, transliteration_cleaners
from tacotron2.text.transliteration import transliterate

from .conftest import reference_file


def _text_golden():
    with open(reference_file("text.json"), encoding="utf-8") as f:
        return json.load(f)


def test_symbols_equal_reference_order():
    golden = _text_golden()
    assert symbols == golden["symbols"]
    assert len(symbols) == golden["n_symbols"] == 148


CLEANERS = {"english_cleaners": english_cleaners, "basic_cleaners": basic_cleaners,
            "transliteration_cleaners": transliteration_cleaners}


def test_every_golden_case():
    golden = _text_golden()
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in golden["cases"]:
            for name, fn in CLEANERS.items():
                if fn(case["input"]) != case[name]:
                    failures.append((name, case["input"], fn(case["input"]), case[name]))
            seq = text_to_sequence(case["input"], golden["cleaners_for_sequence"], allow_empty=True)
            if seq != case["sequence"]:
                failures.append(("sequence", case["input"], seq, case["sequence"]))
            if sequence_to_text(seq) != case["sequence_to_text"]:
                failures.append(("sequence_to_text", case["input"], sequence_to_text(seq), case["sequence_to_text"]))
    assert not failures, failures[:5]
    assert len(golden["cases"]) == 69


@pytest.mark.parametrize("text,expected", [
    ("A £200 fine.", "a two hundred fine."),  # £ dropped before numbers are read
    ("The 1990s", "the nineteen ninetys"),
    ("112th and 112", "one hundred and twelfth and one hundred twelve"),
    ("Dr.Strange", "doctorstrange"),
    ("  lead and trail  ", " lead and trail "),
])
def test_reference_quirks(text, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert english_cleaners(text) == expected


def test_transliteration_drops_unknown_with_warning():
    with pytest.warns(UserWarning, match="dropped"):
        assert transliterate("a€b") == "ab"
    assert transliterate("Zürich Æsir Øre") == "Zuerich AEsir Ore"


def test_arpabet_in_braces():
    seq = text_to_sequence("{HH AH0} x", ["english_cleaners"])
    assert [symbols[i] for i in seq] == ["@HH", "@AH0", " ", "x"]
    assert sequence_to_text(seq) == "{HH AH0} x"


@pytest.mark.parametrize("text", ["", "   ", "日本", "{XX}", "%&#"])
def test_text_without_speakable_symbol_raises(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(EmptyTextError, match="no speakable symbol"):
            text_to_sequence(text, ["english_cleaners"])


def test_unknown_cleaner_is_named():
    with pytest.raises(ValueError, match="unknown text cleaner 'englsh'"):
        clean_text("x", ["englsh"])
