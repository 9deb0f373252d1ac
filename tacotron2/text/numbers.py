"""Spelling out numbers, currency, decimals and ordinals in English, as the published models expect.

The rules and their order reproduce the reference front end (itself from keithito/tacotron),
quirks included: "1990s" becomes "nineteen ninetys", years 1001-2999 are read in pairs,
and "$1.2.3" is left as a dollar amount of an unexpected form.
"""
import functools
import re

_comma_number_re = re.compile(r"([0-9][0-9\,]+[0-9])")
_decimal_number_re = re.compile(r"([0-9]+\.[0-9]+)")
_pounds_re = re.compile(r"£([0-9\,]*[0-9]+)")
_dollars_re = re.compile(r"\$([0-9\.\,]*[0-9]+)")
_ordinal_re = re.compile(r"[0-9]+(st|nd|rd|th)")
_number_re = re.compile(r"[0-9]+")


@functools.lru_cache(maxsize=1)
def _inflect():
    """The inflect engine, imported on first use: importing inflect takes over a second (typeguard
    instruments it), which every process that cleans text without digits would otherwise pay."""
    import inflect
    return inflect.engine()


def _remove_commas(m: re.Match) -> str:
    return m.group(1).replace(",", "")


def _expand_decimal_point(m: re.Match) -> str:
    return m.group(1).replace(".", " point ")


def _unit(n: int, singular: str) -> str:
    return singular if n == 1 else singular + "s"


def _expand_dollars(m: re.Match) -> str:
    amount = m.group(1)
    parts = amount.split(".")
    if len(parts) > 2:
        return amount + " dollars"  # unexpected form: leave the digits to the number rules
    dollars = int(parts[0]) if parts[0] else 0
    cents = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    if dollars and cents:
        return f"{dollars} {_unit(dollars, 'dollar')}, {cents} {_unit(cents, 'cent')}"
    if dollars:
        return f"{dollars} {_unit(dollars, 'dollar')}"
    if cents:
        return f"{cents} {_unit(cents, 'cent')}"
    return "zero dollars"


def _expand_ordinal(m: re.Match) -> str:
    return _inflect().number_to_words(m.group(0))


def _expand_number(m: re.Match) -> str:
    num = int(m.group(0))
    if 1000 < num < 3000:
        if num == 2000:
            return "two thousand"
        if 2000 < num < 2010:
            return "two thousand " + _inflect().number_to_words(num % 100)
        if num % 100 == 0:
            return _inflect().number_to_words(num // 100) + " hundred"
        return _inflect().number_to_words(num, andword="", zero="oh", group=2).replace(", ", " ")
    return _inflect().number_to_words(num, andword="")


def normalize_numbers(text: str) -> str:
    """Spell out every number in `text` (commas, pounds, dollars, decimals, ordinals, cardinals)."""
    text = re.sub(_comma_number_re, _remove_commas, text)
    text = re.sub(_pounds_re, r"\1 pounds", text)
    text = re.sub(_dollars_re, _expand_dollars, text)
    text = re.sub(_decimal_number_re, _expand_decimal_point, text)
    text = re.sub(_ordinal_re, _expand_ordinal, text)
    text = re.sub(_number_re, _expand_number, text)
    return text
