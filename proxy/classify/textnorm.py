"""Text normalisation shared by phrase matching, quote detection and subject checks.

People type opt-outs without accents, with curly apostrophes, in capitals or with Arabic
diacritics; rule phrases and message text are folded the same way so they meet.
"""

from __future__ import annotations

import re
import unicodedata

# Letters that Unicode does not decompose into base + accent, folded by hand so that
# "wyslij" meets "wyślij" and "ønsker" meets "onsker".
_LETTERS = str.maketrans(
    {
        "ł": "l",
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "đ": "d",
        "ı": "i",
        "ð": "d",
        "ħ": "h",  # Maltese, typed "h" on most keyboards
        "þ": "th",
        "’": "'",
        "‘": "'",
        "ʼ": "'",
        "`": "'",
        "´": "'",
        # Arabic: alef maksura and ta marbuta are written interchangeably with ya and ha.
        "ى": "ي",
        "ة": "ه",
        "ـ": "",  # tatweel (elongation) carries no meaning
        "،": ",",
        "؛": ";",
        "؟": "?",
    }
)
# Combining marks left after NFKD: Latin accents, Arabic harakat, hamza above/below (which
# also folds the alef variants أ إ آ into ا).
_MARKS = re.compile("[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_NON_WORD = re.compile(r"[^\w'-]+")
_EDGE_HYPHEN = re.compile(r"(?<!\w)-+|-+(?!\w)")
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower-case and strip accents and diacritics, keeping punctuation and spacing."""
    if text.isascii():  # of the hand-folded letters only the backtick is ASCII
        text = text.lower()  # casefold() of ASCII
        return text.replace("`", "'") if "`" in text else text
    text = text.casefold().translate(_LETTERS)
    if text.isascii():
        return text
    return _MARKS.sub("", unicodedata.normalize("NFKD", text))


def normalize(text: str) -> str:
    """Fold and reduce to words separated by single spaces.

    Hyphens inside a word are kept ("non-stop" is not "stop"); apostrophes are dropped so
    that "don't", "don’t" and "dont" are the same word.
    """
    text = _NON_WORD.sub(" ", fold(text))
    text = _EDGE_HYPHEN.sub(" ", text.replace("'", ""))
    return _SPACES.sub(" ", text).strip()


def has_arabic(text: str) -> bool:
    return any("\u0600" <= ch <= "\u06ff" for ch in text)
