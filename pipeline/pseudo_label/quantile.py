"""Exact per-language quantiles of float32 confidences over a whole dataset, from mergeable per-block
counts: two passes, a few counts per block on the driver, never a row.

OWSM v4 drops the lowest 10 % of its labels by CTC confidence within each language. That needs the
dataset's own quantile per language, not a per-block one. Here a float32 value is mapped to a
32-bit key whose unsigned order is the order of the values (:func:`sortable_keys`), and the
quantile's order statistics are found by radix selection:

1. each block counts its keys' upper 16 bits per language (sparse: only bins that occur); the
   driver adds the counts and finds, for each rank it needs, the bin holding it;
2. each block counts the lower 16 bits of the keys in those bins only; the driver finds the exact
   key, hence the exact value.

The result is **numpy's default quantile** (``np.quantile(values, q)``, ``method="linear"``,
Hyndman & Fan's type 7) of the values as float64: with ``h = (n - 1) q`` it interpolates between
the order statistics ``x[floor h]`` and ``x[floor h + 1]``, computed in the same order of float
operations as numpy, so the two agree to the last bit. Memory per block: at most 65 536 counts per
language, usually a few hundred.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGN = np.uint32(0x80000000)
LOW_BITS = 16
LOW_MASK = np.uint32(0xFFFF)


def sortable_keys(values: np.ndarray) -> np.ndarray:
    """float32 ``[N]`` → uint32 ``[N]`` with ``a < b`` ⇔ ``key(a) < key(b)`` (no NaNs)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return np.where(bits & SIGN, ~bits, bits | SIGN).astype(np.uint32)


def key_values(keys: np.ndarray) -> np.ndarray:
    """The inverse of :func:`sortable_keys`: uint32 keys → float32 values."""
    keys = np.asarray(keys, dtype=np.uint32)
    return np.where(keys & SIGN, keys & ~SIGN, ~keys).astype(np.uint32).view(np.float32)


def population(batch: pa.Table) -> dict[str, np.ndarray]:
    """{language: sortable keys of ``confidence``} over the rows every other rule kept (``keep``
    true, ``language`` and ``confidence`` not null, confidence not NaN)."""
    mask = pc.and_(pc.fill_null(batch.column("keep"), False),
                   pc.and_(pc.is_valid(batch.column("language")), pc.is_valid(batch.column("confidence"))))
    kept = batch.filter(mask)
    values = kept.column("confidence").to_numpy(zero_copy_only=False).astype(np.float32)
    languages = np.asarray(kept.column("language").to_pylist(), dtype=object)
    ok = ~np.isnan(values)
    values, languages = values[ok], languages[ok]
    return {lang: sortable_keys(values[languages == lang]) for lang in sorted(set(languages.tolist()))}


def block_high_counts(batch: pa.Table) -> pa.Table:
    """One row: ``counts_json`` = {language: {upper 16 bits of a key: count}} of :func:`population`."""
    out = {}
    for lang, keys in population(batch).items():
        bins, counts = np.unique(keys >> LOW_BITS, return_counts=True)
        out[lang] = {str(int(b)): int(c) for b, c in zip(bins, counts)}
    return pa.table({"counts_json": [json.dumps(out)]})


def block_low_counts(batch: pa.Table, *, bins: dict[str, list[int]]) -> pa.Table:
    """One row: ``counts_json`` = {language: {upper bits: {lower 16 bits: count}}} for the keys in
    ``bins[language]`` only."""
    out = {}
    for lang, keys in population(batch).items():
        for high in bins.get(lang, []):
            inside = keys[(keys >> LOW_BITS) == high]
            if inside.size:
                lows, counts = np.unique(inside & LOW_MASK, return_counts=True)
                out.setdefault(lang, {})[str(high)] = {str(int(v)): int(c) for v, c in zip(lows, counts)}
    return pa.table({"counts_json": [json.dumps(out)]})


def merge_nested(blocks: list[dict]) -> dict:
    """Sum the ``counts_json`` rows of either pass (nested dicts of counts)."""
    def add(into: dict, more: dict) -> None:
        for k, v in more.items():
            if isinstance(v, dict):
                add(into.setdefault(k, {}), v)
            else:
                into[k] = into.get(k, 0) + v
    total: dict = {}
    for block in blocks:
        add(total, json.loads(block["counts_json"]))
    return total


def _locate(counts: dict[str, int], rank: int) -> tuple[int, int]:
    """(bin, rank within the bin) of the 0-based ``rank`` in {bin: count}."""
    seen = 0
    for b in sorted(counts, key=int):
        if rank < seen + counts[b]:
            return int(b), rank - seen
        seen += counts[b]
    raise AssertionError(f"rank {rank} beyond {seen} values")


def linear_ranks(n: int, q: float) -> tuple[int, int, float]:
    """numpy's ``linear`` method: (lower rank, upper rank, weight of the upper) for ``n`` values."""
    virtual = (n - 1) * q
    lower = int(math.floor(virtual))
    upper = min(lower + 1, n - 1)
    if virtual >= n - 1:
        lower = upper = n - 1
    return lower, upper, virtual - lower


def lerp(a: float, b: float, t: float) -> float:
    """numpy's ``_lerp``: ``a + (b - a) t``, or ``b - (b - a)(1 - t)`` when ``t >= 0.5``."""
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def thresholds(run_pass, q: float) -> dict[str, float]:
    """{language: quantile at ``q``} where ``run_pass(fn, fn_kwargs)`` applies a block function
    (:func:`block_high_counts`, :func:`block_low_counts`) to every block and returns its rows."""
    high = merge_nested(run_pass(block_high_counts, {}))
    plans: dict[str, tuple] = {}
    for lang, counts in high.items():
        lower, upper, weight = linear_ranks(sum(counts.values()), q)
        plans[lang] = (weight, _locate(counts, lower), _locate(counts, upper))
    if not plans:
        return {}
    bins = {lang: sorted({lo[0], up[0]}) for lang, (_, lo, up) in plans.items()}
    low = merge_nested(run_pass(block_low_counts, {"bins": bins}))

    def value(lang: str, b: int, r: int) -> float:
        lowbits, _ = _locate(low[lang][str(b)], r)
        return float(key_values(np.array([(b << LOW_BITS) | lowbits], dtype=np.uint32))[0])

    return {lang: lerp(value(lang, *lo), value(lang, *up), weight)
            for lang, (weight, lo, up) in sorted(plans.items())}


def thresholds_of_tables(tables: list[pa.Table], q: float) -> dict[str, float]:
    """:func:`thresholds` over in-memory blocks (tests, small data)."""
    return thresholds(lambda fn, kw: [fn(t, **kw).to_pylist()[0] for t in tables], q)


def confidence_thresholds(dataset, q: float) -> dict[str, float]:
    """{language: ``np.quantile`` of the kept rows' confidences at ``q``} over a Ray ``dataset``
    with ``keep``, ``language`` and ``confidence`` columns: two passes of Ray tasks, each block
    returning one small row of counts."""
    view = dataset.select_columns(["keep", "language", "confidence"])
    return thresholds(lambda fn, kw: view.map_batches(fn, batch_format="pyarrow", batch_size=None,
                                                      fn_kwargs=kw).take_all(), q)
