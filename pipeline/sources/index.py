"""The utterance index as a Ray dataset: one read task per index unit, ids handled on Arrow.

Each :class:`~pipeline.sources.listing.IndexUnit` becomes a Ray ``ReadTask`` (a ``Datasource``
as in Ray Data's own ``_internal/datasource/``) that opens its own files inside a worker and
yields ``INDEX_SCHEMA`` blocks: no audio is read, and the driver never sees a shard's bytes.
The driver then takes only three Arrow columns of the index (id, input order, scorable) to find
repeated ids, the ids a resumed run already wrote and the rows evaluation leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ConfigError, SourceColumns
from pipeline.retry import StorageUnavailable, find_cause, retry_call
from pipeline.scoring import is_scorable_reference
from pipeline.sources.formats import is_librispeech_transcript
from pipeline.sources.conventions import keep_extensions_of_shared_ids
from pipeline.sources.ids import DUPLICATE_ID, first_seen, relative_id
from pipeline.sources.items import (
    ALL_CHANNELS, INDEX_SCHEMA, ITEM_SCHEMA, ORDER_COLUMN, SCORABLE_COLUMN, file_item, ghosts_of,
    group_sizes_of,
    items_table,
)
from pipeline.sources.listing import IndexUnit
from pipeline.sources.shards import parquet_index, tar_index
from pipeline.storage import Storage

ROW_BITS = 32   # _order = unit number << ROW_BITS | row within the unit's output


@dataclass(frozen=True)
class IndexSettings:
    """What an index task needs besides its unit (shipped to the workers)."""

    storage: Storage
    columns: SourceColumns
    audio_root: str | None = None
    reference_filter: str | None = None
    channel: int | str | None = None       # --channel: N, "all" or None (see ``with_channel``)
    # A Parquet row group whose audio holds more bytes than this is reported (Index.large_groups):
    # the fetch reads a row group whole (pipeline/stages/row_groups.py). None: not checked (the
    # largest row group is found either way: Index.largest_group_bytes).
    group_budget_bytes: int | None = None


def _read_bytes(uri: str, settings: IndexSettings) -> bytes:
    storage = settings.storage
    fs, path = storage.filesystem(uri)
    return retry_call(lambda: fs.cat_file(path), what=f"reading {uri}",
                      budget_s=storage.retry_seconds, redact=storage.redact)


def _shard_tables(unit: IndexUnit, settings: IndexSettings) -> list[pa.Table]:
    """A Parquet or tar shard's index; a shard that cannot be read is one error row."""
    uri, storage = unit.uris[0], settings.storage
    fs, path = storage.filesystem(uri)

    def read() -> list[pa.Table]:
        if unit.kind == "arrow":
            from pipeline.sources.hf_arrow import arrow_index

            local = type(fs).__name__ == "LocalFileSystem"
            with (pa.memory_map(path) if local else fs.open(path, "rb")) as f:
                return list(arrow_index(uri, f, settings.columns, unit.id_prefix or None))
        with fs.open(path, "rb") as f:
            if unit.kind == "parquet":
                return list(parquet_index(uri, f, settings.columns, unit.id_prefix or None))
            return [tar_index(uri, f, settings.columns)]

    try:
        return retry_call(read, what=f"indexing {uri}", budget_s=storage.retry_seconds,
                          redact=storage.redact)
    except OSError as e:
        kind = {"parquet": "Parquet", "arrow": "Arrow"}.get(unit.kind, "tar")
        return [items_table([file_item(f"{uri}#error", uri, error=storage.redact(
            f"unreadable {kind} shard: {type(e).__name__}: {e}"))])]


def _manifest_bytes(uri: str, settings: IndexSettings) -> bytes:
    try:
        return _read_bytes(uri, settings)
    except OSError as e:
        raise ConfigError(settings.storage.redact(
            f"cannot read manifest {uri}: {e}; check that it exists and you can read it")) from e


def _manifest_table(uri: str, settings: IndexSettings, id_folder: str = "") -> pa.Table:
    from pipeline.sources.manifest import manifest_table

    return manifest_table(_manifest_bytes(uri, settings), uri, settings.columns,
                          settings.audio_root, id_folder or None)


def _nemo_tarred_table(unit: IndexUnit, settings: IndexSettings) -> pa.Table:
    from pipeline.sources.nemo_tarred import tarred_unit_table

    def open_file(uri: str):
        fs, path = settings.storage.filesystem(uri)
        return fs.open(path, "rb")

    return tarred_unit_table(unit, lambda uri: _manifest_bytes(uri, settings), open_file,
                             settings.columns)


def _lhotse_table(unit: IndexUnit, settings: IndexSettings) -> pa.Table:
    from pipeline.sources.lhotse import lhotse_table

    return lhotse_table({uri: _manifest_bytes(uri, settings) for uri in unit.uris},
                        settings.audio_root)


def _librispeech_table(unit: IndexUnit, settings: IndexSettings) -> pa.Table:
    from pipeline.sources.librispeech import librispeech_table

    transcripts = [u for u in unit.uris if is_librispeech_transcript(u)]
    audio = [u for u in unit.uris if not is_librispeech_transcript(u)]
    text = b"\n".join(_read_bytes(u, settings) for u in transcripts)
    return librispeech_table(transcripts[0], text, audio, unit.root)


def _kaldi_table(unit: IndexUnit, settings: IndexSettings) -> pa.Table:
    from pipeline.sources.kaldi import kaldi_table

    files = {uri.rsplit("/", 1)[-1]: _read_bytes(uri, settings) for uri in unit.uris}
    return kaldi_table(unit.root, files, settings.audio_root)


def unit_tables(unit: IndexUnit, settings: IndexSettings) -> Iterable[pa.Table]:
    """The ``ITEM_SCHEMA`` tables of one unit, in its own order."""
    if unit.kind == "files":
        return [keep_extensions_of_shared_ids(
            items_table([file_item(relative_id(unit.id_root, uri), uri) for uri in unit.uris]),
            unit.id_root)]
    if unit.kind == "manifest":
        return [_manifest_table(unit.uris[0], settings, unit.id_root)]
    if unit.kind == "nemo-tarred":
        return [_nemo_tarred_table(unit, settings)]
    if unit.kind == "lhotse":
        return [_lhotse_table(unit, settings)]
    if unit.kind in ("parquet", "webdataset", "arrow"):
        return _shard_tables(unit, settings)
    if unit.kind == "librispeech":
        return [_librispeech_table(unit, settings)]
    if unit.kind == "kaldi":
        return [_kaldi_table(unit, settings)]
    raise ValueError(f"unknown index unit kind {unit.kind!r}")


def with_channel(table: pa.Table, channel: int | str | None) -> pa.Table:
    """``--channel`` applied to the rows without their own ``channel``: ``N`` → channel ``N``;
    ``"all"`` → :data:`~pipeline.sources.items.ALL_CHANNELS` (one row per channel, decided when
    the file is decoded); ``None`` leaves them to the downmix."""
    if channel is None:
        return table
    value = ALL_CHANNELS if channel == "all" else int(channel)
    column = pc.fill_null(table.column("channel"), pa.scalar(value, pa.int32()))
    return table.set_column(table.schema.get_field_index("channel"), "channel", column)


def scorable_mask(references: pa.ChunkedArray | pa.Array, reference_filter: str | None) -> pa.Array:
    """Per row, whether evaluation keeps it (``is_scorable_reference``); all true without a filter."""
    if reference_filter is None:
        return pa.array([True] * len(references), pa.bool_())
    seen: dict[str | None, bool] = {}
    values = []
    for ref in references.to_pylist():
        if ref not in seen:
            seen[ref] = is_scorable_reference(ref, reference_filter)
        values.append(seen[ref])
    return pa.array(values, pa.bool_())


# A whole-input mistake found inside an index task (a manifest that is not UTF-8, a missing
# column) comes back as one row with this ``_order`` and the message as its id, instead of an
# exception: Ray Data would log the task's traceback on the console before the driver could turn
# it into the one ``error:`` line. ``build_index`` raises it as a ConfigError.
USER_ERROR_ORDER = -1
# A row with this ``_order`` carries, as its id, how many macOS metadata members (``._x`` in a
# tar) the task skipped: counted by the driver, never an output row.
GHOSTS_ORDER = -2


# A row with this ``_order`` names (id: ``<bytes> <uri> row group <N>``) a Parquet row group whose
# audio is bigger than ``IndexSettings.group_budget_bytes``, or a unit's largest: never an output row.
LARGE_GROUP_ORDER = -3


def _ghost_row(count: int) -> pa.Table:
    return _marker_row(str(count), "", GHOSTS_ORDER)


def _marker_row(uid: str, source: str, order: int) -> pa.Table:
    row = items_table([file_item(uid, source, error="skipped")])
    return row.append_column(ORDER_COLUMN, pa.array([order], pa.int64())).append_column(
        SCORABLE_COLUMN, pa.array([False]))


def _large_group_rows(unit: IndexUnit, tables, budget: int | None) -> Iterator[pa.Table]:
    """Marker rows for the unit's row groups over ``budget`` and for its largest one."""
    sizes = [(group, size) for table in tables for group, size in group_sizes_of(table)]
    if not sizes:
        return
    largest = max(sizes, key=lambda g: g[1])
    for group, size in sizes:
        if (group, size) == largest or (budget is not None and size > budget):
            yield _marker_row(f"{size} {unit.uris[0]} row group {group}", "", LARGE_GROUP_ORDER)


def read_unit(number: int, unit: IndexUnit, settings: IndexSettings) -> Iterator[pa.Table]:
    """``INDEX_SCHEMA`` blocks of unit ``number``: its items plus ``_order`` and ``_scorable``."""
    produced = 0
    try:
        tables = list(unit_tables(unit, settings))
    except ConfigError as e:
        message = settings.storage.redact(str(e).strip().splitlines()[0])
        row = items_table([file_item(message, unit.root or unit.uris[0], error=message)])
        yield row.append_column(ORDER_COLUMN, pa.array([USER_ERROR_ORDER], pa.int64())).append_column(
            SCORABLE_COLUMN, pa.array([False]))
        return
    ghosts = sum(ghosts_of(table) for table in tables)
    if ghosts:
        yield _ghost_row(ghosts)
    yield from _large_group_rows(unit, tables, settings.group_budget_bytes)
    for table in tables:
        table = with_channel(table.select(ITEM_SCHEMA.names).cast(ITEM_SCHEMA), settings.channel)
        start = (number << ROW_BITS) + produced
        order = pa.array(range(start, start + table.num_rows), pa.int64())
        produced += table.num_rows
        yield table.append_column(ORDER_COLUMN, order).append_column(
            SCORABLE_COLUMN, scorable_mask(table.column("reference"), settings.reference_filter))


def index_datasource(units: list[IndexUnit], settings: IndexSettings):
    """A Ray ``Datasource`` with one read task per unit."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class IndexDatasource(Datasource):
        def get_name(self) -> str:
            return "IndexInputs"

        def estimate_inmemory_data_size(self):
            return None

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None,
                                 input_files=None)
            return [ReadTask(lambda n=n, u=u: read_unit(n, u, settings), meta,
                             schema=INDEX_SCHEMA) for n, u in enumerate(units)]

    return IndexDatasource()


@dataclass(frozen=True)
class Index:
    """The materialized index and what the driver worked out from its id column."""

    dataset: object                 # ray.data.Dataset of INDEX_SCHEMA rows (in the object store)
    rows: int                       # every row of every input
    dropped_unscorable: int         # rows left out by ``reference_filter``
    duplicate_orders: pa.Array      # ``_order`` of rows whose id came before (first wins)
    ids: pa.Array                   # ids of the rows kept (repeats included), input order unknown
    ghosts: int = 0                 # macOS metadata members skipped inside tars
    # Parquet row groups bigger than IndexSettings.group_budget_bytes: ("<uri> row group N", bytes)
    large_groups: tuple[tuple[str, int], ...] = ()
    largest_group_bytes: int = 0    # audio bytes of the largest Parquet row group (0: none)


def _raise_user_error(exc: BaseException, storage: Storage) -> None:
    """A user mistake or an outage inside an index task, raised as itself (one line)."""
    for kind in (ConfigError, StorageUnavailable):
        cause = find_cause(exc, (kind,))
        if cause is not None:
            raise kind(storage.redact(str(cause).strip().splitlines()[0])) from None


def build_index(units: list[IndexUnit], settings: IndexSettings) -> Index:
    """Run the index tasks (Ray must be up) and find repeated ids and the rows the reference
    filter leaves out, on the Arrow columns ``id``, ``_order``, ``_scorable`` only: nothing per
    row in Python on the driver."""
    import ray

    try:
        dataset = ray.data.read_datasource(index_datasource(units, settings),
                                           override_num_blocks=max(1, len(units))).materialize()
        # Blocks are read from the object store without a copy (Arrow buffers map the shared
        # memory); only the three columns taken here are ever touched on the driver.
        parts = [t.select(["id", ORDER_COLUMN, SCORABLE_COLUMN])
                 for t in ray.get(dataset.to_arrow_refs()) if t.num_rows]
    except Exception as e:  # noqa: BLE001 - user mistakes become one line, the rest stays as is
        _raise_user_error(e, settings.storage)
        raise
    meta = (pa.concat_tables(parts) if parts else
            INDEX_SCHEMA.empty_table().select(["id", ORDER_COLUMN, SCORABLE_COLUMN]))
    mistakes = meta.filter(pc.equal(meta.column(ORDER_COLUMN), USER_ERROR_ORDER))
    if mistakes.num_rows:
        raise ConfigError(mistakes.column("id")[0].as_py())
    is_ghost_count = pc.equal(meta.column(ORDER_COLUMN), GHOSTS_ORDER)
    ghosts = sum(int(v) for v in meta.filter(is_ghost_count).column("id").to_pylist())
    meta = meta.filter(pc.invert(is_ghost_count))
    is_large = pc.equal(meta.column(ORDER_COLUMN), LARGE_GROUP_ORDER)
    groups = [(where, int(size)) for size, where in (
        text.split(" ", 1) for text in meta.filter(is_large).column("id").to_pylist())]
    budget = settings.group_budget_bytes
    large_groups = tuple(sorted(g for g in groups if budget is not None and g[1] > budget))
    meta = meta.filter(pc.invert(is_large))
    kept = meta.filter(meta.column(SCORABLE_COLUMN))
    first = first_seen(kept.column("id"), kept.column(ORDER_COLUMN))
    return Index(dataset=dataset, rows=meta.num_rows,
                 dropped_unscorable=meta.num_rows - kept.num_rows,
                 duplicate_orders=kept.column(ORDER_COLUMN).filter(pc.invert(first)).combine_chunks(),
                 ids=kept.column("id").combine_chunks(), ghosts=ghosts,
                 large_groups=large_groups,
                 largest_group_bytes=max((size for _, size in groups), default=0))


def remaining_ids(ids: pa.Array, done_ids: pa.Array) -> pa.Array:
    """``ids`` not among ``done_ids`` (what a resumed run still computes), on Arrow."""
    return ids.filter(pc.invert(pc.is_in(ids, value_set=done_ids)))


def select_items(batch: pa.Table, *, duplicate_orders: pa.Array, done_ids: pa.Array) -> pa.Table:
    """An index block → the items to decode: rows evaluation keeps, minus ids already written;
    a repeated id (not the first of its id) becomes a ``duplicate id`` error row."""
    keep = batch.column(SCORABLE_COLUMN)
    if len(done_ids):
        keep = pc.and_(keep, pc.invert(pc.is_in(batch.column("id"), value_set=done_ids)))
    batch = batch.filter(keep)
    repeated = pc.is_in(batch.column(ORDER_COLUMN), value_set=duplicate_orders)
    error = pc.if_else(repeated, pa.scalar(DUPLICATE_ID), batch.column("error"))
    batch = batch.set_column(batch.schema.get_field_index("error"), "error", error)
    return batch.drop_columns([ORDER_COLUMN, SCORABLE_COLUMN])
