"""The Ray Data API: corpora in as a ``ray.data.Dataset``, transcripts out as one.

In the spirit of ``ray.data.llm`` (a config → a processor → ``processor(ds)``)::

    import ray
    from pipeline.data import TranscriberConfig, build_transcriber, read_corpus, write_results

    transcribe = build_transcriber(TranscriberConfig(model="tests/fixtures/granite-nar-tiny"))
    out = transcribe(read_corpus(["examples/manifest.jsonl"]))      # lazy
    write_results(out, "outputs/api", summary=True)

The processor runs exactly the jobs' stages (``pipeline.run.transcription_stages``): decoding as
CPU tasks of their own (never fused into the inference actors: their memory request differs),
the packed inference actor pool, scoring; the same segmentation of long inputs, the same error
rows (a bad file is a row with ``error`` set, never an exception), the same output columns
(``pipeline/sinks/schema.py``: the contract in ``design.md``).

User rows (``ray.data.from_items``, ``read_binary_files``, ``read_parquet``, ...) hold the audio
in one column (:attr:`TranscriberConfig.audio_column`), as

* bytes (``binary``): the compressed file (FLAC, WAV, MP3, Opus, ...), decoded like a file;
* a URI or an absolute path (``string``): read on the worker (local, ``s3://`` with the
  config's endpoint);
* a Hugging Face ``{bytes, path}`` struct: the bytes, or the file at ``path`` when they are null.

Other columns of the user's rows pass through unchanged, except those the output already has.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ConfigError, RunSettings, SourceColumns, TranscribeConfig
from pipeline.model_ref import ModelSpec, ModelUnavailable
from pipeline.sinks.schema import output_schema
from pipeline.sources.ids import strip_extension
from pipeline.sources.items import ITEM_SCHEMA
from pipeline.storage import Storage

__all__ = ["TranscriberConfig", "SpeechTranscriber", "build_transcriber", "read_corpus",
           "write_results", "score", "word_error_rate", "pseudo_label_filter"]

# A flag of a job's message → this API's name for it (the others: TranscriberConfig's fields).
PYTHON_NAMES = {"input": "uris", "output": "uri"}
FLAG = re.compile(r"--([a-z][a-z0-9-]*)(?: (?=[\w./~-])([\w./~-]+))?")


def for_python(message: str) -> str:
    """A job's one-line message with its flags as this API's parameters: ``--gpus-per-actor 0``
    → ``gpus_per_actor=0``, ``--model X`` → ``model=X``, ``--input`` → ``uris``."""
    def name(match: re.Match) -> str:
        flag, value = match.group(1), match.group(2)
        python = PYTHON_NAMES.get(flag, flag.replace("-", "_"))
        if flag in PYTHON_NAMES:
            return python + (f" {value}" if value else "")
        return f"{python}={value}" if value else f"{python}="

    return FLAG.sub(name, message)


@dataclass(frozen=True, kw_only=True)
class TranscriberConfig(RunSettings):
    """How to transcribe: the model, the inference pool and the audio rules (the flags of
    ``jobs.transcribe``, same names and defaults), and which columns of the user's rows hold what.

    * ``audio_column`` (required in the rows): ``binary`` bytes, a ``string`` URI/path, or a
      ``{bytes, path}`` struct.
    * ``id_column``: the row's id (any type, written as a string); when the rows have no such
      column the id is the audio path (or ``source_column``) without its extension.
    * ``reference_column``: an optional reference transcript (``wer_errors``/``wer_words``).
    * ``source_column``: an optional column naming where the audio came from (``source``).
    """

    audio_column: str = "audio"
    id_column: str = "id"
    reference_column: str | None = "text"
    source_column: str | None = None

    def job_config(self) -> TranscribeConfig:
        """The same settings as the job's config (validated there, messages translated)."""
        try:
            shared = {f.name: getattr(self, f.name) for f in fields(RunSettings)}
            return TranscribeConfig(inputs=("ray.data.Dataset",), output="ray.data.Dataset",
                                    **shared)
        except ConfigError as e:
            raise ConfigError(for_python(str(e))) from None


def _resolve(config: TranscribeConfig) -> ModelSpec:
    """The checkpoint the actors load, checked here; messages speak of ``model=``."""
    from pipeline.checkpoint import check_local_checkpoint
    from pipeline.model_ref import resolve_model

    try:
        from pipeline.numerics import resolve_numerics

        check_local_checkpoint(config.model)
        spec = resolve_model(config.model, config.revision, config.device, config.dtype)
        # one profile for the decode tasks' features and the actors' model, as in the jobs
        return resolve_numerics(spec, config.numerics)
    except ModelUnavailable as e:
        raise ModelUnavailable(f"{e}; pass a local checkpoint folder as "
                               "TranscriberConfig(model='tests/fixtures/granite-nar-tiny') "
                               "(a random test checkpoint: nonsense text)") from None
    except ConfigError as e:
        raise ConfigError(for_python(str(e))) from None


USER_COLUMN = "_user_columns"   # the user's other columns, as one struct, through the stages


# --- user rows → index items -------------------------------------------------------------------

def _cell(value) -> tuple[bytes | None, str | None]:
    """(bytes, uri) of an audio cell: bytes, a URI/path, or a ``{bytes, path}`` struct."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        return (bytes(data) if data else None), (path or None)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (bytes(value) or None), None
    if isinstance(value, str):
        return None, (value or None)
    return None, None


def user_items(batch: pa.Table, *, config: TranscriberConfig) -> pa.Table:
    """A batch of user rows → index items (``ITEM_SCHEMA`` + ``data``), one per row, in order,
    with the other columns appended as they are. A row without audio, or whose id cannot be
    derived, is an error row."""
    from pipeline.sources.items import file_item

    check_columns(batch.schema, config)
    rows = batch.select([c for c in _used_columns(config) if c in batch.column_names]).to_pylist()
    items, data = [], []
    for row in rows:
        raw, uri = _cell(row.get(config.audio_column))
        source = row.get(config.source_column) if config.source_column else None
        source = str(source) if source is not None else uri
        uid = row.get(config.id_column)
        uid = str(uid) if uid is not None else (strip_extension(source) if source else None)
        error = None
        if raw is None and uri is None:
            error = f"no audio in column {config.audio_column!r}"
        if uid is None:
            error = error or f"no id: the row has no {config.id_column!r} and no audio path"
            uid = ""
        reference = row.get(config.reference_column) if config.reference_column else None
        item = file_item(uid, source or f"{config.audio_column}:{uid}",
                         None if reference is None else str(reference), error)
        item["uri"] = uri or ""
        items.append(item)
        data.append(raw)
    table = pa.Table.from_pylist(items, schema=ITEM_SCHEMA).append_column(
        "data", pa.array(data, pa.binary()))
    extras = passthrough_columns(batch.schema, config)
    if extras:   # one struct column through the stages, unpacked by ``user_columns`` at the end
        packed = pa.StructArray.from_arrays(
            [batch.column(n).combine_chunks() for n in extras],
            fields=[batch.schema.field(n) for n in extras])
        table = table.append_column(USER_COLUMN, packed)
    return table


def user_columns(batch: pa.Table) -> pa.Table:
    """The output rows with the user's columns (:data:`USER_COLUMN`) unpacked after the
    contract's."""
    if USER_COLUMN not in batch.column_names:
        return batch
    packed = batch.column(USER_COLUMN).combine_chunks()
    batch = batch.drop_columns([USER_COLUMN])
    for i, field in enumerate(packed.type):
        batch = batch.append_column(field, packed.field(i))
    return batch


def _used_columns(config: TranscriberConfig) -> list[str]:
    return [c for c in (config.audio_column, config.id_column, config.reference_column,
                        config.source_column) if c]


def passthrough_columns(schema: pa.Schema, config: TranscriberConfig) -> list[str]:
    """The user's columns carried to the output: all but the ones read as audio/id/reference/
    source (the output has those under its own names)."""
    used = set(_used_columns(config))
    return [n for n in schema.names if n not in used]


def check_columns(schema: pa.Schema, config: TranscriberConfig) -> None:
    """:class:`ConfigError` (one line) for rows the transcriber cannot read: no audio column, an
    audio column of another type, no id and no way to derive one, a column that would collide
    with an output column."""
    names = schema.names
    if config.audio_column not in names:
        raise ConfigError(f"the dataset has no audio column {config.audio_column!r} (columns: "
                          f"{', '.join(names)}); set TranscriberConfig(audio_column=...)")
    kind = schema.field(config.audio_column).type
    if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or
            pa.types.is_string(kind) or pa.types.is_large_string(kind) or
            pa.types.is_struct(kind) or pa.types.is_null(kind)):   # null: a block of rows without audio
        raise ConfigError(f"audio column {config.audio_column!r} is {kind}; it must hold bytes, "
                          "a URI/path string, or a {bytes, path} struct")
    if config.id_column not in names and pa.types.is_binary(kind) and \
            not (config.source_column and config.source_column in names):
        raise ConfigError(f"the dataset has no id column {config.id_column!r} and its audio is "
                          "bytes without a path; set TranscriberConfig(id_column=...) or "
                          "source_column=...")
    clash = sorted(set(passthrough_columns(schema, config)) & set(output_schema(True).names))
    if clash:
        raise ConfigError(f"column(s) {', '.join(clash)} of the dataset would be replaced by the "
                          "output's own; rename them first (ds.rename_columns)")


# --- the processor -----------------------------------------------------------------------------

class SpeechTranscriber:
    """``transcriber(ds) -> ds``: the lazy output Dataset of ``ds``'s rows transcribed.

    Output columns (types as written by the jobs): ``id`` string, ``source`` string,
    ``duration_s`` float64, ``text`` string, ``draft_text`` string, ``token_ids`` list<int32>,
    ``confidence`` float32, ``reference`` string, ``wer_errors``/``wer_words`` int32 (null without
    a reference), ``error`` string (null on success), ``model`` string, then the stage columns
    (``segments``, ``silent``, timings, nodes) and the user's other columns unchanged. One
    output row per input row. Ids are not checked for repeats (the rows are not read before
    the dataset runs): :func:`read_corpus` marks repeated ids as the jobs do.
    """

    def __init__(self, config: TranscriberConfig, spec: ModelSpec, echo=print):
        self.config, self.spec, self.echo = config, spec, echo
        self.job = config.job_config()

    def __call__(self, ds):
        import ray

        from pipeline.cluster import configure_ray_data, ensure_ray, fit_resources, light_tasks, \
            LIGHT_TASK_CPUS
        from pipeline.config import resolve_resources
        from pipeline.run import decode_block_rows, fetched_items, transcription_stages
        from pipeline.stages.row_groups import INDEX_ROWS_CONFIG, LARGEST_GROUP_CONFIG

        ensure_ray(verbose=True)
        configure_ray_data()
        storage = Storage.from_env(self.config.s3_endpoint)
        resources = resolve_resources(self.job, ray.cluster_resources())
        try:
            resources = fit_resources(resources, say=self.echo,
                                      explicit_cpus=self.config.cpus_per_actor is not None)
        except ConfigError as e:
            raise ConfigError(for_python(str(e))) from None
        schema = ds.schema(fetch_if_missing=False)
        schema = getattr(schema, "base_schema", schema)
        if isinstance(schema, pa.Schema) and set(ITEM_SCHEMA.names) <= set(schema.names):
            # rows of read_corpus: index items, read the jobs' way
            passthrough = tuple(n for n in schema.names if n not in ITEM_SCHEMA.names)
            # the index's row count, kept by read_corpus (stages a user chained after it are not
            # run once more to count; an upper bound after a filter is fine for sizing blocks)
            total = ds.context.get_config(INDEX_ROWS_CONFIG, None)
            rows = decode_block_rows(ds.count() if total is None else total,
                                     ray.cluster_resources().get("CPU", 1))
            items = fetched_items(ds, storage, rows, ds.context.get_config(LARGEST_GROUP_CONFIG, 0))
            return transcription_stages(items, self.job, self.spec, storage, resources,
                                        passthrough)
        if isinstance(schema, pa.Schema):   # known without running: check now, else per batch
            check_columns(schema, self.config)
        items = ds.map_batches(user_items, batch_format="pyarrow",
                               fn_kwargs={"config": self.config}, num_cpus=LIGHT_TASK_CPUS,
                               compute=light_tasks())
        out = transcription_stages(items, self.job, self.spec, storage, resources, (USER_COLUMN,))
        return out.map_batches(user_columns, batch_format="pyarrow", num_cpus=LIGHT_TASK_CPUS,
                               compute=light_tasks())


def build_transcriber(config: TranscriberConfig | None = None, *, echo=print) -> SpeechTranscriber:
    """A :class:`SpeechTranscriber` for ``config``: settings validated and the model checked
    (a local folder, or a hub id pinned to its commit) here, before any data runs.

    Raises :class:`~pipeline.config.ConfigError` for a bad setting and
    :class:`~pipeline.model_ref.ModelUnavailable` for a model that is neither local, reachable
    nor cached; both messages are one line naming the parameter to change.
    """
    config = config or TranscriberConfig()
    job = config.job_config()
    return SpeechTranscriber(config, _resolve(job), echo=echo)


def read_corpus(uris, *, format: str = "auto", columns: SourceColumns | None = None,
                audio_root: str | None = None, s3_endpoint: str | None = None, echo=print):
    """A Dataset of index rows for the corpora at ``uris`` (a URI or a list): exactly the jobs'
    ``--input`` (every format: audio folders, manifests, Parquet, WebDataset, LibriSpeech,
    Kaldi, NeMo tarred, lhotse, Arrow), the same ids and spans, repeated ids as ``duplicate id``
    error rows. Several URIs give derived ids from the folder they all lie under, as several
    ``--input`` do (``a/0000``, ``b/0000``; whole paths when they share none).

    Columns (``pipeline/sources/items.py``): ``id``, ``source``, ``reference``, ``error`` string;
    ``uri`` string, ``offset``/``length`` int64 (a byte range, -1 for a whole file),
    ``row_group``/``row_in_group`` int32 and ``audio_column`` string (a Parquet row),
    ``start_s``/``end_s`` float64 (a span of the file, null for the whole file), ``channel``
    int32 (the channel to transcribe, null for the downmix). No audio is read: a
    :class:`SpeechTranscriber` reads it on the workers, its fetch tasks asking Ray for the
    memory of the largest Parquet row group (kept in the Dataset's context). Listing happens
    here, on the driver; the index is built by Ray tasks and held in the object store. ``echo``
    gets the jobs' notes (a row group over a decode task's memory request, default settings).
    """
    from pipeline.cluster import absolute_uri, configure_ray_data, ensure_ray
    from pipeline.run import index_items, row_group_note_budget
    from pipeline.sources.index import IndexSettings, build_index
    from pipeline.sources.listing import list_inputs, plan_units
    from pipeline.stages import row_groups

    uris = (uris,) if isinstance(uris, str) else tuple(uris)
    try:
        if not uris:
            raise ConfigError("read_corpus needs at least one URI")
        storage = Storage.from_env(s3_endpoint)
        listings = list_inputs(tuple(absolute_uri(u) for u in uris), format, storage)
        units = plan_units(listings)        # input mistakes before Ray starts
        ensure_ray(verbose=True)
        configure_ray_data()
        budget = row_group_note_budget()
        index = build_index(units, IndexSettings(
            storage=storage, columns=columns or SourceColumns(),
            audio_root=absolute_uri(audio_root), group_budget_bytes=budget))
    except ConfigError as e:
        raise ConfigError(for_python(str(e))) from None
    large = row_groups.large_groups_note(index.large_groups, budget)
    if large:
        echo(f"note: {large}")
    items = index_items(index, pa.array([], pa.string()))
    items.context.set_config(row_groups.LARGEST_GROUP_CONFIG, index.largest_group_bytes)
    items.context.set_config(row_groups.INDEX_ROWS_CONFIG, index.rows)
    return items


def write_results(ds, uri: str, *, summary: bool = True, overwrite: bool = False,
                  s3_endpoint: str | None = None, echo=print) -> dict | None:
    """Run ``ds`` (the output of a :class:`SpeechTranscriber`) and write it as the jobs do: Ray's
    Parquet writer under ``uri`` (retried on storage errors), then, with ``summary``,
    ``_summary.json`` (rows, errors, audio seconds, wall seconds, RTFx, WER, ...) once every file
    is complete. An output that already holds results is refused unless ``overwrite``.
    Returns the summary (``None`` without one)."""
    from pipeline.cluster import absolute_uri, removing_output_if_left_empty
    from pipeline.run import write_dataset
    from pipeline.sinks.output import prepare_output, read_columns, write_summary
    from pipeline.sinks.summary import SUMMARY_COLUMNS, format_summary, summarize

    uri = absolute_uri(uri)
    storage = Storage.from_env(s3_endpoint)
    started = time.monotonic()
    with removing_output_if_left_empty(storage, uri):
        try:
            prepare_output(storage, uri, resume=False, overwrite=overwrite)
        except ConfigError as e:
            raise ConfigError(str(e).replace("--output", "the output").replace(
                "pass --resume to add the missing ids or --overwrite to replace them",
                "pass overwrite=True to replace them")) from None
        write_dataset(ds, storage, uri)
    if not summary:
        return None
    table = read_columns(storage, uri, SUMMARY_COLUMNS)
    result = summarize(table, new_ids=table["id"], wall_seconds=time.monotonic() - started,
                       model="", settings={"written_by": "pipeline.data.write_results"})
    write_summary(storage, uri, result)
    if echo is not None:
        echo(format_summary(result, uri))
    return result


# --- evaluation and pseudo-label filters as Dataset functions ----------------------------------

def score(ds, *, normalizer: str = "leaderboard"):
    """``ds`` (transcript rows with ``reference`` and ``text``) with ``wer_errors``/``wer_words``
    recomputed with ``normalizer`` (``english``, ``leaderboard``, ``whisper``, ``basic``,
    ``none``); other columns unchanged. Lazy."""
    from pipeline.cluster import LIGHT_TASK_CPUS
    from pipeline.text import NORMALIZER_NAMES
    from pipeline.stages.score import score_batch

    if normalizer not in NORMALIZER_NAMES:
        raise ConfigError(f"normalizer {normalizer!r} is not one of {', '.join(NORMALIZER_NAMES)}")
    names = ds.schema().names
    passthrough = tuple(n for n in names if n not in output_schema(False).names)
    return ds.map_batches(score_batch, batch_format="pyarrow", num_cpus=LIGHT_TASK_CPUS,
                          fn_kwargs={"normalizer": normalizer, "with_audio": False,
                                     "passthrough": passthrough})


def _wer_counts(batch: pa.Table) -> pa.Table:
    ok = pc.is_null(batch["error"])
    scored = pc.and_(ok, pc.is_valid(batch["wer_words"]))

    def total(column) -> int:
        return int(pc.sum(column.filter(scored)).as_py() or 0)

    return pa.table({"utterances": [batch.num_rows], "errors": [batch.num_rows - int(pc.sum(
        pc.cast(ok, pa.int64())).as_py() or 0)], "scored": [int(pc.sum(pc.cast(
            scored, pa.int64())).as_py() or 0)], "wer_errors": [total(batch["wer_errors"])],
        "wer_words": [total(batch["wer_words"])]})


def word_error_rate(ds) -> dict:
    """Corpus WER of transcript rows: Σ ``wer_errors`` / Σ ``wer_words`` over the rows without an
    ``error`` that have a reference (the leaderboard's ``batch_error_rate``, never a mean of
    rates). Returns ``{"wer": fraction or None, "wer_errors", "wer_words", "utterances",
    "errors", "scored"}``. Runs ``ds``."""
    parts = ds.select_columns(["error", "wer_errors", "wer_words"]).map_batches(
        _wer_counts, batch_format="pyarrow", batch_size=None).to_pandas()
    totals = {k: int(parts[k].sum()) for k in ("utterances", "errors", "scored", "wer_errors",
                                              "wer_words")}
    totals["wer"] = totals["wer_errors"] / totals["wer_words"] if totals["wer_words"] else None
    return totals


def _decide_batch(batch: pa.Table, *, filters, normalizer: str, kept_only: bool) -> pa.Table:
    from pipeline.pseudo_label.quality import apply_filters

    batch = apply_filters(batch, filters, normalizer=normalizer)
    return batch.filter(batch["keep"]) if kept_only else batch


def pseudo_label_filter(ds, filters=None, *, normalizer: str = "leaderboard", kept_only: bool = False):
    """``ds`` (transcript rows) with the pseudo-label decision of ``jobs.pseudo_label``
    (``pipeline.pseudo_label.quality.apply_filters``): the quality columns
    (``draft_disagreement`` float32, ``language`` string, ``unique_word_ratio``, rates, ...),
    ``keep`` bool and ``reject_reason`` string (null when kept; ``pipeline.pseudo_label.filters.RULES``).
    ``filters``: a :class:`~pipeline.pseudo_label.filters.Filters` (thresholds, ``None`` = off).
    With ``kept_only`` only the kept rows remain. Lazy."""
    from pipeline.pseudo_label.filters import Filters

    return ds.map_batches(_decide_batch, batch_format="pyarrow",
                          fn_kwargs={"filters": filters or Filters(), "normalizer": normalizer,
                                     "kept_only": kept_only})
