"""Quality columns of a transcript and the keep/reject decision, as pure functions over batches.

For Ray Data users, on their own rows::

    from pipeline.pseudo_label.quality import Filters, add_quality_columns, apply_filters
    rules = Filters(languages=("en", "de"), max_repeat_ratio=0.6, chars_per_second=(4.0, 25.0))
    ds = ds.map_batches(add_quality_columns, batch_format="pyarrow")
    ds = ds.map_batches(apply_filters, batch_format="pyarrow", fn_kwargs={"rules": rules})

Both take a ``pyarrow.Table`` or a ``pandas.DataFrame`` and return the same kind, with the input's
columns kept and these added (:data:`QUALITY_FIELDS`, then ``keep`` bool and ``reject_reason``
string from :func:`apply_filters`):

========================  ===========  ==================================================================
column                    type         meaning
========================  ===========  ==================================================================
``draft_disagreement``    float32      word edits between draft and final text ÷ the longer (0-1)
``language``              string       ISO 639-1 code of the text (py3langid), null for empty text
``language_confidence``   float32      the identifier's posterior of that language (0-1)
``unique_word_ratio``     float64      distinct words ÷ words (1 = nothing repeated); SDP's feature
``longest_repeat``        int32        most back-to-back repeats of one n-gram (1 = none, 0 = no words)
``longest_word``          int32        characters of the longest word (punctuation stripped)
``chars_per_second``      float64      ``len(text)`` ÷ ``duration_s`` (NeMo SDP's character rate)
``words_per_second``      float64      words ÷ ``duration_s`` (NeMo SDP's word rate)
========================  ===========  ==================================================================

Input columns read: ``text`` (string), ``duration_s`` (double, seconds), ``error`` (string, null
when the row succeeded), and where present ``draft_text``, ``confidence``, ``reference``. Words are
the text split on whitespace, compared lower-cased with leading/trailing punctuation stripped.
"""

from __future__ import annotations

import functools
import string

import pyarrow as pa

from pipeline.pseudo_label.filters import RULES, Filters, decide, draft_disagreement
from pipeline.pseudo_label.language import detect_language

__all__ = ["QUALITY_FIELDS", "DECISION_FIELDS", "RULES", "Filters", "add_quality_columns",
           "apply_filters", "quality_values", "text_features", "longest_repeat"]

QUALITY_FIELDS = [
    pa.field("draft_disagreement", pa.float32()),
    pa.field("language", pa.string()),
    pa.field("language_confidence", pa.float32()),
    pa.field("unique_word_ratio", pa.float64()),
    pa.field("longest_repeat", pa.int32()),
    pa.field("longest_word", pa.int32()),
    pa.field("chars_per_second", pa.float64()),
    pa.field("words_per_second", pa.float64()),
]
DECISION_FIELDS = [pa.field("keep", pa.bool_()), pa.field("reject_reason", pa.string())]
# A loop longer than this many words is still caught: it repeats its first 16 words back to back.
MAX_NGRAM = 16
_STRIP = string.punctuation + "¿¡«»“”‘’„…·–—"


@functools.lru_cache(maxsize=4)
def cached_normalizer(name: str):
    """:func:`pipeline.scoring.make_normalizer`, built once per process."""
    from pipeline.scoring import make_normalizer

    return make_normalizer(name)


def words_of(text: str) -> list[str]:
    """Whitespace words, lower-cased, leading/trailing punctuation stripped, empty ones dropped."""
    return [w for w in (t.strip(_STRIP).lower() for t in text.split()) if w]


def longest_repeat(words: list[str], max_n: int = MAX_NGRAM) -> int:
    """The most times one n-gram (n = 1 … ``max_n`` words) occurs back to back: ``a b a b a b`` → 3,
    ``go go go`` → 3, no repeat → 1, no words → 0."""
    if not words:
        return 0
    best = 1
    size = len(words)
    for n in range(1, min(max_n, size // 2) + 1):
        if size // n <= best:
            break        # n-grams this long cannot repeat more often than the best found
        run = [1] * (size + 1)
        for i in range(size - 2 * n, -1, -1):       # run[i]: repeats of words[i:i+n] from i on
            if words[i:i + n] == words[i + n:i + 2 * n]:
                run[i] = run[i + n] + 1
                best = max(best, run[i])
    return best


def text_features(text: str) -> dict:
    """``unique_word_ratio``, ``longest_repeat``, ``longest_word`` and the word count of ``text``
    (``None`` ratio and zeros for text without words)."""
    words = words_of(text or "")
    if not words:
        return {"unique_word_ratio": None, "longest_repeat": 0, "longest_word": 0, "words": 0}
    return {"unique_word_ratio": len(set(words)) / len(words), "longest_repeat": longest_repeat(words),
            "longest_word": max(len(w) for w in words), "words": len(words)}


def quality_values(row: dict, normalize) -> dict:
    """The :data:`QUALITY_FIELDS` of one row (all null on an error row)."""
    if row.get("error"):
        return {f.name: None for f in QUALITY_FIELDS}
    text = row.get("text") or ""
    language, language_confidence = detect_language(text)
    features = text_features(text)
    duration = row.get("duration_s") or 0.0
    rate = (lambda n: n / duration) if duration > 0 else (lambda n: None)
    return {
        "draft_disagreement": draft_disagreement(row.get("draft_text") or "", text, normalize),
        "language": language, "language_confidence": language_confidence,
        "unique_word_ratio": features["unique_word_ratio"], "longest_repeat": features["longest_repeat"],
        "longest_word": features["longest_word"], "chars_per_second": rate(len(text.strip())),
        "words_per_second": rate(len(text.split())),
    }


def _as_rows(batch) -> tuple[list[dict], bool, pa.Schema]:
    is_arrow = isinstance(batch, pa.Table)
    table = batch if is_arrow else pa.Table.from_pandas(batch, preserve_index=False)
    return table.to_pylist(), is_arrow, table.schema


def _back(rows: list[dict], schema: pa.Schema, added: list[pa.field], is_arrow: bool):
    names = {f.name for f in added}
    out = pa.Table.from_pylist(rows, schema=pa.schema([f for f in schema if f.name not in names] + added))
    return out if is_arrow else out.to_pandas()


def add_quality_columns(batch, *, normalizer: str = "english"):
    """``batch`` (``pyarrow.Table`` or ``pandas.DataFrame``) with :data:`QUALITY_FIELDS` added (or
    replaced). ``normalizer`` (``english``, ``basic``, ``none``, ...) is the one used for the
    draft disagreement. Needs ``text``, ``duration_s`` and ``error``; ``draft_text`` optional."""
    normalize = cached_normalizer(normalizer)
    rows, is_arrow, schema = _as_rows(batch)
    for row in rows:
        row.update(quality_values(row, normalize))
    return _back(rows, schema, QUALITY_FIELDS, is_arrow)


def apply_filters(batch, rules: Filters, *, normalizer: str = "english",
                  confidence_thresholds: dict[str, float] | None = None):
    """``batch`` with ``keep`` (bool) and ``reject_reason`` (string, one of :data:`RULES`, null
    when kept) added: the first failing rule of ``rules`` in :data:`RULES` order.

    Quality columns missing from ``batch`` are computed first (:func:`add_quality_columns`).
    ``confidence_thresholds`` ({language: confidence}) applies the ``lowest_confidence`` cut of
    ``rules.drop_lowest_confidence`` to rows every other rule kept (``confidence`` below its
    language's threshold is cut); compute it over the whole dataset with
    :func:`pipeline.pseudo_label.quantile.confidence_thresholds` (a per-batch quantile would not be
    OWSM's per-language cut). Raises ``ValueError`` when ``rules.expected_language_column`` is not
    a column of ``batch``.
    """
    columns = batch.column_names if isinstance(batch, pa.Table) else list(batch.columns)
    if rules.expected_language_column is not None and rules.expected_language_column not in columns:
        raise ValueError(f"expected_language_column {rules.expected_language_column!r} is not a "
                         f"column of the rows (columns: {', '.join(columns)})")
    if any(f.name not in columns for f in QUALITY_FIELDS):
        batch = add_quality_columns(batch, normalizer=normalizer)
    normalize = cached_normalizer(normalizer)
    rows, is_arrow, schema = _as_rows(batch)
    for row in rows:
        row["keep"], row["reject_reason"] = decide(row, rules, normalize, normalizer)
        if row["keep"] and confidence_thresholds is not None:
            cut = confidence_thresholds.get(row["language"])
            if cut is not None and float(row["confidence"]) < cut:
                row["keep"], row["reject_reason"] = False, "lowest_confidence"
    return _back(rows, schema, DECISION_FIELDS, is_arrow)
