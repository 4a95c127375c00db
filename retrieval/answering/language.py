"""Messages the bot cannot read as English questions: another language, mixed scripts, emoji only.

The language is told by langdetect (Google's language-detection profiles, offline, 2.5 MB, pure
Python; seeded, so the same message always gets the same answer). It costs about 0.7 s the first
time, so it is imported only for messages that look non-English: letters of a script other than
Latin, or no English function word ("the", "who", "how much") and either letters outside ASCII or
fewer than half the words known (English words, or words of the indexed articles). English
questions never load it, and "Who is Luís Montenegro?" stays English.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from functools import cache

ENGLISH_ONLY = "I read English news articles and answer questions in English: please ask your question in English."

# Function words that mark a question as English (none of them is a common word of the nearby languages).
_ENGLISH_MARKERS = frozenset(
    """the who whom whose what when where why how which did does is was were are has have had of and with
    from for many much will would could should this that these those it its he she they their about after
    before than there""".split()
)
_WORD = re.compile(r"[^\W\d_]+")
_LANGUAGES = {
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "pl": "Polish",
    "ru": "Russian",
    "uk": "Ukrainian",
    "tr": "Turkish",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "cs": "Czech",
    "ro": "Romanian",
    "hu": "Hungarian",
    "el": "Greek",
    "ar": "Arabic",
    "he": "Hebrew",
    "hi": "Hindi",
    "ja": "Japanese",
    "ko": "Korean",
    "zh-cn": "Chinese",
    "zh-tw": "Chinese",
    "vi": "Vietnamese",
    "id": "Indonesian",
}
_lock = threading.Lock()


def scripts(text: str) -> list[str]:
    """The scripts of the letters in `text` (LATIN, CYRILLIC, CJK, ...), most used first."""
    counts: dict[str, int] = {}
    for char in text:
        if unicodedata.category(char).startswith("L"):
            name = unicodedata.name(char, "UNKNOWN").split()[0]
            script = "CJK" if name in {"CJK", "HIRAGANA", "KATAKANA", "HANGUL"} else name
            counts[script] = counts.get(script, 0) + 1
    return sorted(counts, key=lambda script: -counts[script])


@cache
def _detector() -> Callable[[str], list[object]]:
    from langdetect import DetectorFactory, detect_langs

    DetectorFactory.seed = 0
    return detect_langs  # type: ignore[no-any-return]


def detect_language(text: str) -> tuple[str, float]:
    """langdetect's most likely language of `text` and its probability ("", 0.0: none found)."""
    from langdetect.lang_detect_exception import LangDetectException

    with _lock:  # langdetect's seeded detector is not safe across threads
        try:
            found = _detector()(text)
        except LangDetectException:
            return "", 0.0
    best = found[0] if found else None
    return (getattr(best, "lang", ""), float(getattr(best, "prob", 0.0))) if best else ("", 0.0)


def looks_english(text: str, known: Callable[[str], bool]) -> bool:
    """Whether a Latin-script message reads as English without asking the detector (see the module)."""
    words = [word.lower() for word in _WORD.findall(text)]
    if any(word in _ENGLISH_MARKERS for word in words):
        return True
    if not text.isascii():
        return False
    return 2 * sum(known(word) for word in words) >= len(words)


def language_reply(message: str, known: Callable[[str], bool]) -> str | None:
    """A one-line reply, in English, to a message that is not an English question; None for one that is.

    `known(word)` says whether a word is English or a word of the indexed articles.
    """
    if not any(unicodedata.category(c)[0] in "LN" for c in message):
        return "I can only read words: please ask a question about the news in English, e.g. “Who opened the bridge?”"
    found = scripts(message)
    if len(found) > 1 and "LATIN" in found:
        others = " and ".join(s.title() for s in found if s != "LATIN")
        return f"Your message mixes Latin letters with {others} ones. {ENGLISH_ONLY}"
    if found and found[0] != "LATIN":
        language = _LANGUAGES.get(detect_language(message)[0], "")
        return f"This looks like {language}. {ENGLISH_ONLY}" if language else ENGLISH_ONLY
    if not found or looks_english(message, known):
        return None
    language, probability = detect_language(message)
    if language and language != "en" and probability >= 0.7:
        name = _LANGUAGES.get(language)
        return f"This looks like {name}. {ENGLISH_ONLY}" if name else ENGLISH_ONLY
    return None
