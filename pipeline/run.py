"""The transcription job: list → index (Ray tasks) → decode+features (CPU tasks) → packed
inference (actor pool) → score → Parquet, then ``_summary.json`` written by the driver once every
data file is complete.

The driver lists the inputs and never reads a shard: index tasks open the files, and the driver
takes only the Arrow id column of the index to find repeated ids and (``--resume``) ids already
written.

Faults: a dead inference actor is restarted and its lost batch retried (Ray Data's actor-pool
defaults); storage I/O is retried with a bounded backoff (``pipeline/retry.py``,
Ray's writer for the Parquet files); if the job still fails, what was written stays and
``--resume`` adds the rest.
"""

from __future__ import annotations

import math
import time

import pyarrow as pa

from pipeline.checkpoint import check_local_checkpoint
from pipeline.cluster import (
    DECODE_CPUS, LIGHT_TASK_CPUS, check_output_outside_inputs, light_tasks, plural,
    absolute_paths, alive_nodes, check_output_shared, configure_ray_data, ensure_ray, fit_resources,
    removing_output_if_left_empty, results_line,
)
from pipeline.config import ActorResources, ConfigError, TranscribeConfig, resolve_resources
from pipeline.stages.decode import DecodeSettings, decode_task_memory_bytes
from pipeline.faults import fault_env
from pipeline.progress import ProgressWatch
from pipeline.stages.inference import CONCURRENT_CALLS, Transcriber
from pipeline.stages.packing import rows_per_call
from pipeline.model_ref import ModelSpec, resolve_model
from pipeline.numerics import resolve_numerics
from pipeline.sinks.output import clean_for_resume, existing_ids, prepare_output, read_columns, write_summary
from pipeline.sinks.subtitles import write_subtitles
from pipeline.retry import (
    StorageUnavailable, find_cause, is_transient, retry_call, unavailable_message,
)
from pipeline.sources.index import (
    Index, IndexSettings, build_index, remaining_ids, select_items,
)
from pipeline.sources.listing import ghosts_note, list_inputs, plan_units
from pipeline.stages.channels import parent_ids, rows_of
from pipeline.stages.fetch import prefetch_parquet
from pipeline.stages.prepare import decode_batch
from pipeline.stages.score import score_batch
from pipeline.storage import Storage
from pipeline.sinks.summary import SUMMARY_COLUMNS, format_summary, summarize

DECODE_BATCH_ROWS = 4      # rows per decode call: a task's memory request covers this many inputs
# Rows per block entering decoding: about BLOCKS_PER_CPU blocks per cluster CPU so that decoding
# spreads and balances, within bounds that keep Ray's per-block cost (a few ms) noise.
DECODE_BLOCK_ROWS = (16, 256)
BLOCKS_PER_CPU = 4
# Rows per actor call: from the frame budget (pipeline.stages.packing.rows_per_call), split into packs.
# A crashed actor (OOM, preempted node) is restarted and its in-flight batch retried by Ray Data's
# own actor-pool defaults (max_restarts=-1, max_task_retries=-1): Ray 2.60 deprecates both ways of
# passing other values (map_batches' ``**ray_remote_args`` and ``ray_remote_args_fn``).


def decode_block_rows(rows: int, cpus: float) -> int:
    """Rows per decoding block for ``rows`` items on a cluster of ``cpus`` CPUs."""
    low, high = DECODE_BLOCK_ROWS
    return min(high, max(low, math.ceil(rows / max(1.0, cpus * BLOCKS_PER_CPU))))


def index_items(index: Index, done_ids):
    """The items to decode, from the materialized index: repeats marked, resumed ids and
    unscorable rows left out (materialized). Blocks stay as the index tasks wrote them, so that
    each holds whole Parquet row groups: cutting them here would make every piece of a row group
    read that row group's audio again (:func:`items_dataset` cuts after the audio is read)."""
    return index.dataset.map_batches(
        select_items, batch_format="pyarrow", batch_size=None, zero_copy_batch=True,
        fn_kwargs={"duplicate_orders": index.duplicate_orders, "done_ids": done_ids},
    ).materialize()


def items_dataset(index: Index, done_ids, storage: Storage):
    """:func:`index_items`, then Parquet audio read a row group at a time, as decoding asks for
    it, and the rows cut into blocks of ``decode_block_rows`` (``fetched_items``)."""
    import ray

    rows = decode_block_rows(index.rows, ray.cluster_resources().get("CPU", 1))
    return fetched_items(index_items(index, done_ids), storage, rows, index.largest_group_bytes)


def fetched_items(items, storage: Storage, rows: int, largest_group_bytes: int = 0):
    """``items`` (index blocks of whole row groups) with their Parquet audio read
    (``prefetch_parquet``: each row group once), cut into blocks of at most ``rows`` rows inside
    the same light tasks (``cut_blocks``), so that decoding spreads over the CPUs and no task
    that cuts blocks holds a CPU the decoders need. The fetch tasks ask Ray for the memory the
    largest row group they will hold takes (``fetch_memory_request``; none without Parquet)."""
    from pipeline.stages.row_groups import cut_blocks, light_remote_args

    memory = fetch_memory_request(largest_group_bytes)
    fetched = items.map_batches(
        prefetch_parquet, batch_format="pyarrow", batch_size=None, fn_kwargs={"storage": storage},
        compute=light_tasks(), **light_remote_args(memory))
    return cut_blocks(fetched, rows, memory)


def fetch_memory_request(largest_group_bytes: int) -> int | None:
    """Bytes each fetch task asks Ray for: the worker plus ``FETCH_COPIES`` times the largest row
    group's audio (``pipeline.stages.row_groups.fetch_task_bytes``), at most 80 % of the largest
    node's memory (as :func:`decode_memory_request`); ``None`` without Parquet row groups."""
    from pipeline.stages.row_groups import fetch_task_bytes

    if largest_group_bytes <= 0:
        return None
    return _fit_largest_node(fetch_task_bytes(largest_group_bytes))


def _fit_largest_node(wanted: int) -> int:
    """``wanted`` bytes, never more than 80 % of the largest node's memory (a request no node can
    grant would leave the task waiting forever)."""
    import ray

    largest = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    return int(min(wanted, 0.8 * largest)) if largest else wanted


def build_dataset(index: Index, done_ids, config: TranscribeConfig, spec: ModelSpec,
                  storage: Storage, resources: ActorResources):
    """The lazy Ray dataset of output rows for the index rows not in ``done_ids``."""
    return transcription_stages(items_dataset(index, done_ids, storage), config, spec, storage,
                                resources)


def decode_settings(config: TranscribeConfig, spec: ModelSpec) -> DecodeSettings:
    """What the decode tasks do, from the job's settings and the resolved model's numerics: the
    one place both the decode stage and its memory budget read."""
    return DecodeSettings(max_duration_s=config.max_duration_seconds,
                          max_segment_s=config.max_segment_seconds,
                          silence_dbfs=config.silence_dbfs, numerics=spec.numerics,
                          features_on=config.features_on)


def transcription_stages(items, config: TranscribeConfig, spec: ModelSpec, storage: Storage,
                         resources: ActorResources, passthrough: tuple[str, ...] = ()):
    """Decode (CPU tasks) → packed inference (actor pool) → score, on a Ray dataset of index
    items (``ITEM_SCHEMA``, plus ``data`` where the bytes are already there): the one code path
    of the jobs and of the Ray Data API (``pipeline/data.py``). ``passthrough`` columns of
    ``items`` are carried to the output unchanged."""
    import ray.data

    passthrough = tuple(passthrough)
    settings = decode_settings(config, spec)
    # Decoding runs as CPU tasks of its own, on any node, so the GPU never waits on it. Ray fuses
    # adjacent stages whose resource requests are equal; the decoders' memory request (long inputs
    # decode to hundreds of MB) makes them differ, so decoding is never folded into the actors.
    decoded = items.map_batches(
        decode_batch, batch_format="pyarrow", batch_size=DECODE_BATCH_ROWS, num_cpus=1,
        memory=decode_memory_request(settings),
        fn_kwargs={"storage": storage, "settings": settings, "with_audio": config.with_audio,
                   "passthrough": passthrough})
    inferred = decoded.map_batches(
        Transcriber, batch_format="pyarrow", batch_size=rows_per_call(config.max_frames_per_pack),
        compute=ray.data.ActorPoolStrategy(min_size=resources.min_actors,
                                           max_size=resources.max_actors,
                                           max_concurrent_calls_per_actor=CONCURRENT_CALLS,
                                           # our own lock serialises the forwards (Transcriber)
                                           enable_true_multi_threading=True),
        num_gpus=resources.num_gpus, num_cpus=resources.num_cpus,
        runtime_env=actor_runtime_env(),
        fn_constructor_kwargs={"spec": spec, "editing_steps": config.editing_steps,
                               "max_frames_per_pack": config.max_frames_per_pack,
                               "num_threads": max(1, int(resources.num_cpus)),
                               "with_audio": config.with_audio,
                               "timestamps": effective_timestamps(config),
                               "passthrough": passthrough,
                               "simulate_rtfx": config.simulate_rtfx,
                               "features_on": config.features_on})
    scored = inferred.map_batches(
        score_batch, batch_format="pyarrow", num_cpus=LIGHT_TASK_CPUS,
        compute=light_tasks(),
        fn_kwargs={"normalizer": config.normalizer, "with_audio": config.with_audio,
                   "language": config.language, "passthrough": passthrough})
    if not config.subtitles:
        return scored
    # Each task writes its own rows' subtitle files (pipeline/sinks/subtitles.py); rows pass on.
    return scored.map_batches(
        write_subtitles, batch_format="pyarrow", num_cpus=LIGHT_TASK_CPUS, compute=light_tasks(),
        fn_kwargs={"storage": storage, "output": config.output, "formats": config.subtitles})


def effective_timestamps(config: TranscribeConfig) -> str:
    """``--timestamps``, with ``--subtitles`` asking for word times when it was left at none."""
    return "word" if config.subtitles and config.timestamps == "none" else config.timestamps


def decode_memory_request(settings: DecodeSettings) -> int:
    """Bytes each decode task asks Ray for: what ``DECODE_BATCH_ROWS`` inputs of the longest
    allowed duration can hold (``decode_task_memory_bytes``), never more than 80 % of the largest
    node's memory (a request no node can grant would leave the task waiting forever)."""
    return _fit_largest_node(decode_task_memory_bytes(settings, DECODE_BATCH_ROWS))


def row_group_note_budget(settings: DecodeSettings | None = None) -> int:
    """Audio bytes of one Parquet row group above which the job says so (a note): the memory a
    decode task asks Ray for under ``settings`` (the defaults when ``None``, as for
    ``read_corpus``), :func:`decode_memory_request`. Needs Ray started."""
    return decode_memory_request(settings or DecodeSettings())


def actor_runtime_env() -> dict | None:
    """A Ray ``runtime_env`` that forwards the test-only fault switches (``pipeline/faults.py``)
    to the inference actors, wherever they run; ``None`` when none is set."""
    env = fault_env()
    return {"env_vars": env} if env else None


def write_dataset(dataset, storage: Storage, output: str) -> None:
    """Ray's Parquet writer (one file per block, retried on storage errors); a storage outage
    longer than the retry budget surfaces as :class:`StorageUnavailable` with a clear message."""
    arrow_fs, path = storage.arrow_filesystem(output)
    # Ray checks the output on the driver before writing, without retries: make it reachable first.
    retry_call(lambda: arrow_fs.get_file_info(path), what=f"checking {output}",
               budget_s=storage.retry_seconds, redact=storage.redact)
    try:
        # No CPU request (``LIGHT_TASK_CPUS``): the writer must not wait behind the decoders for
        # a free CPU, or results reach storage in one burst at the end and a crash loses them all.
        dataset.write_parquet(path, filesystem=arrow_fs,
                              ray_remote_args={"num_cpus": LIGHT_TASK_CPUS},
                              concurrency=light_tasks().size)
    except Exception as e:
        raise storage_failure(e, storage) or e


def storage_failure(exc: BaseException, storage: Storage) -> StorageUnavailable | None:
    """The :class:`StorageUnavailable` behind a failed Ray execution, if storage was the cause."""
    cause = find_cause(exc, (StorageUnavailable,))
    if cause is not None:
        # Ray appends its own retry advice on further lines: keep ours, the first.
        return StorageUnavailable(storage.redact(str(cause).strip().splitlines()[0]))
    io_error = find_cause(exc, (OSError,))
    if io_error is not None and is_transient(io_error):
        return StorageUnavailable(storage.redact(unavailable_message(
            "writing results", storage.retry_seconds, io_error)))
    return None


def run_transcribe(config: TranscribeConfig, spec: ModelSpec | None = None,
                   *, echo=print) -> dict:
    """Run the job for ``config`` and return the summary (also written to ``_summary.json``).
    Local paths are made absolute first; an output folder this run created and left empty is
    removed when it fails."""
    config = absolute_paths(config)
    storage = Storage.from_env(config.s3_endpoint)
    with removing_output_if_left_empty(storage, config.output):
        return _transcribe(config, spec, storage, echo)


def _transcribe(config: TranscribeConfig, spec: ModelSpec | None, storage: Storage,
                echo) -> dict:
    import ray

    started = time.monotonic()
    check_local_checkpoint(config.model)
    spec = spec or resolve_model(config.model, config.revision, config.device, config.dtype)
    # One profile for the decode tasks' features and the actors' model (pipeline/numerics.py).
    spec = resolve_numerics(spec, config.numerics)
    check_output_outside_inputs(config.inputs, config.output)
    listings = list_inputs(config.inputs, config.format, storage)
    # The index tasks are planned here too: a mistake in the inputs (stray tars, a shard number
    # twice) is one line before anything is deleted (--overwrite) or started (Ray).
    units = plan_units(listings)
    for note in (note for listing in listings for note in listing.notes):
        echo(f"note: {note}")
    # The output is checked (refusal, --resume/--overwrite, writable) before any Ray work.
    prepare_output(storage, config.output, resume=config.resume, overwrite=config.overwrite)
    ensure_ray()
    configure_ray_data()
    check_output_shared(config.output, alive_nodes())
    # What the inference pool asks for must fit beside decoding, or Ray Data waits forever.
    resources = fit_resources(resolve_resources(config, ray.cluster_resources()), say=echo,
                              explicit_cpus=config.cpus_per_actor is not None)
    needs = {"decode_batch": f"{DECODE_CPUS:g} CPU per task",
             "Transcriber": f"{resources.num_cpus:g} CPU and {resources.num_gpus:g} GPU per actor"}
    requests = {"decode_batch": {"CPU": DECODE_CPUS},
                "Transcriber": {"CPU": resources.num_cpus, "GPU": resources.num_gpus}}
    with ProgressWatch(echo, needs=needs, requests=requests):
        return _index_and_write(config, spec, storage, listings, units, resources, started,
                                echo)


def _index_and_write(config: TranscribeConfig, spec: ModelSpec, storage: Storage, listings,
                     units, resources: ActorResources, started: float, echo) -> dict:
    from pipeline.stages import row_groups

    budget = row_group_note_budget(decode_settings(config, spec))
    index = build_index(units, IndexSettings(
        storage=storage, columns=config.columns, audio_root=config.audio_root,
        reference_filter=config.reference_filter, channel=config.channel,
        group_budget_bytes=budget))
    large = row_groups.large_groups_note(index.large_groups, budget)
    notes = [large] if large else []
    for note in notes:
        echo(f"note: {note}")
    if not index.rows:
        raise ConfigError(f"no utterances found in --input {' '.join(config.inputs)} (empty "
                          "manifest or shards); point --input at the audio to transcribe")
    done = existing_ids(storage, config.output) if config.resume else pa.array([], pa.string())
    if config.channel == "all":             # output ids are <id>#ch<N>
        done = parent_ids(done)
    todo = remaining_ids(index.ids, done)
    if len(done) and len(todo) == len(index.ids):
        # nothing written matches these inputs: resuming would write every row again beside them
        raise ConfigError(
            f"--resume: none of the {len(done)} ids already in {config.output} is an id of these "
            "inputs (other inputs, or ids derived another way, e.g. several --input now start at "
            "their common folder); resuming would transcribe every row again beside them: use "
            "--overwrite to start over, or another --output")
    if config.resume:
        clean_for_resume(storage, config.output)
    formats = ", ".join(sorted({listing.format for listing in listings}))
    echo(f"indexed {plural(index.rows, 'utterance')} ({formats}) from {len(listings)} input(s); "
         f"{len(todo)} to transcribe, {len(index.ids) - len(todo)} already in the output"
         + (f", {index.dropped_unscorable} without a scorable reference left out"
            if config.reference_filter else "")
         + (f"; {len(index.duplicate_orders)} repeated ids" if len(index.duplicate_orders) else "")
         + ghosts_note(sum(listing.ghosts for listing in listings) + index.ghosts))

    if len(todo):
        echo(f"inference: {resources.min_actors}-{resources.max_actors} "
             f"actor{'' if resources.max_actors == 1 else 's'}, "
             f"{resources.num_gpus:g} GPU and {resources.num_cpus:g} CPU each")
        write_dataset(build_dataset(index, done, config, spec, storage, resources), storage,
                      config.output)

    table = read_columns(storage, config.output, SUMMARY_COLUMNS)
    new_ids = rows_of(table["id"], todo) if config.channel == "all" else todo
    summary = summarize(table, new_ids=new_ids,
                        wall_seconds=time.monotonic() - started, model=spec.shown,
                        settings={**config.settings(), "numerics": spec.numerics},
                        dropped_unscorable=(index.dropped_unscorable
                                            if config.reference_filter is not None else None))
    if notes:
        summary["notes"] = notes
    write_summary(storage, config.output, summary)
    echo(format_summary(summary, config.output))
    echo(results_line(config.output))
    return summary
