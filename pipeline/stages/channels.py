"""``--channel all``: an item becomes one row per channel of its file, ids ``<id>#ch<N>``.

The number of channels is read from the fetched bytes' header (libsndfile, else FFmpeg's
stream parameters): nothing is decoded for it, and the bytes are fetched once for all channels.
A file whose channels cannot be told stays one row, and decoding it gives the reason.
"""

from __future__ import annotations

import io

from pipeline.sources.conventions import channel_suffix
from pipeline.sources.items import ALL_CHANNELS


def channel_count(data: bytes | None) -> int | None:
    """Channels of the audio in ``data`` from its header; ``None`` when it cannot be told."""
    if not data:
        return None
    import soundfile as sf

    try:
        return sf.info(io.BytesIO(data)).channels
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    import av

    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            if not container.streams.audio:
                return None
            context = container.streams.audio[0].codec_context
            return getattr(context, "channels", None) or context.layout.nb_channels
    except (av.FFmpegError, ValueError, OSError, AttributeError):
        return None


def expand_channels(items: list[dict], fetched: list[tuple]) -> tuple[list[dict], list[tuple]]:
    """``items`` (and their ``(bytes, error)``) with every :data:`ALL_CHANNELS` item replaced by
    one item per channel of its file (``id#ch0``, ``id#ch1``, ...), in channel order."""
    if not any(item.get("channel") == ALL_CHANNELS for item in items):
        return items, fetched
    out_items, out_fetched = [], []
    for item, got in zip(items, fetched):
        if item.get("channel") != ALL_CHANNELS:
            out_items.append(item)
            out_fetched.append(got)
            continue
        count = None if item.get("error") or got[1] else channel_count(got[0])
        if not count:
            out_items.append({**item, "channel": None,
                              "error": item.get("error") or got[1] or
                              "cannot tell the channels of the audio for --channel all"})
            out_fetched.append(got)
            continue
        for channel in range(count):
            out_items.append({**item, "channel": channel, "id": item["id"] + channel_suffix(channel)})
            out_fetched.append(got)
    return out_items, out_fetched


CHANNEL_SUFFIX = r"#ch\d+$"


def parent_ids(ids) -> "pa.Array":
    """Output ids of ``--channel all`` rows back to the index ids they came from (``x#ch1`` → ``x``):
    what ``--resume`` compares with the index."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    return pc.unique(pc.replace_substring_regex(ids, CHANNEL_SUFFIX, ""))


def rows_of(table_ids, index_ids) -> "pa.Array":
    """The output ids whose index id is among ``index_ids`` (the rows this run computed)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = table_ids.combine_chunks() if isinstance(table_ids, pa.ChunkedArray) else table_ids
    parents = pc.replace_substring_regex(ids, CHANNEL_SUFFIX, "")
    return ids.filter(pc.fill_null(pc.is_in(parents, value_set=index_ids), False))
