"""The symbol set of the published Tacotron 2 models, in the id order they were trained with.

Ids are positions in `symbols`; changing the order or the content breaks every
published checkpoint, whose embedding table has exactly these 148 rows.
"""
from typing import List

PAD = "_"
_special = "-"
_punctuation = "!'(),.:;? "
_letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# The 84 ARPAbet phonemes of the CMU pronouncing dictionary (with stress digits).
ARPABET: List[str] = (
    "AA AA0 AA1 AA2 AE AE0 AE1 AE2 AH AH0 AH1 AH2 AO AO0 AO1 AO2 AW AW0 AW1 AW2 "
    "AY AY0 AY1 AY2 B CH D DH EH EH0 EH1 EH2 ER ER0 ER1 ER2 EY EY0 EY1 EY2 F G HH "
    "IH IH0 IH1 IH2 IY IY0 IY1 IY2 JH K L M N NG OW OW0 OW1 OW2 OY OY0 OY1 OY2 P R "
    "S SH T TH UH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH"
).split()

# ARPAbet symbols carry an '@' so they never collide with letters.
symbols: List[str] = [PAD] + list(_special) + list(_punctuation) + list(_letters) + ["@" + p for p in ARPABET]
