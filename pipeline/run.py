"""The transcription job: index → decode+features (CPU tasks) → packed inference (actor pool) →
score → Parquet, then ``_summary.json`` written by the driver once every data file is complete."""

from __future__ import annotations

import time

from pipeline.config import ActorResources, TranscribeConfig, resolve_resources
from pipeline.decode import DecodeSettings
from pipeline.inference import Transcriber
from pipeline.items import items_table
from pipeline.model_ref import ModelSpec, resolve_model
from pipeline.output import existing_ids, prepare_output, read_columns, write_summary
from pipeline.sources import build_index
from pipeline.stages import decode_batch, score_batch
from pipeline.storage import Storage
from pipeline.summary import SUMMARY_COLUMNS, format_summary, summarize

DECODE_BATCH_ROWS = 16     # one decode task's share of the index
INFER_BATCH_ROWS = 64      # rows per actor call, split into packs by frames
DECODE_TASK_MEMORY = 512 * 1024**2


def ensure_ray() -> None:
    """Join the cluster named by ``RAY_ADDRESS`` (set under ``ray job submit``) or start one here."""
    import ray

    if not ray.is_initialized():
        ray.init()


def build_dataset(items: list[dict], config: TranscribeConfig, spec: ModelSpec,
                  storage: Storage, resources: ActorResources):
    """The lazy Ray dataset of output rows for ``items``."""
    import ray.data

    table = items_table(items)
    blocks = [table.slice(i, DECODE_BATCH_ROWS) for i in range(0, table.num_rows, DECODE_BATCH_ROWS)]
    settings = DecodeSettings(max_duration_s=config.max_duration_seconds,
                              max_segment_s=config.max_segment_seconds,
                              silence_dbfs=config.silence_dbfs)
    # Decoding runs as CPU tasks of its own, on any node, so the GPU never waits on it. Ray fuses
    # adjacent stages whose resource requests are equal; the decoders' memory request (long inputs
    # decode to hundreds of MB) makes them differ, so decoding is never folded into the actors.
    decoded = ray.data.from_arrow(blocks).map_batches(
        decode_batch, batch_format="pyarrow", batch_size=DECODE_BATCH_ROWS, num_cpus=1,
        memory=DECODE_TASK_MEMORY,
        fn_kwargs={"storage": storage, "settings": settings, "with_audio": config.with_audio})
    inferred = decoded.map_batches(
        Transcriber, batch_format="pyarrow", batch_size=INFER_BATCH_ROWS,
        compute=ray.data.ActorPoolStrategy(min_size=resources.min_actors,
                                           max_size=resources.max_actors),
        num_gpus=resources.num_gpus, num_cpus=resources.num_cpus,
        fn_constructor_kwargs={"spec": spec, "editing_steps": config.editing_steps,
                               "max_frames_per_pack": config.max_frames_per_pack,
                               "num_threads": max(1, int(resources.num_cpus)),
                               "with_audio": config.with_audio})
    return inferred.map_batches(
        score_batch, batch_format="pyarrow", num_cpus=0.5,
        fn_kwargs={"normalizer": config.normalizer, "with_audio": config.with_audio})


def run_transcribe(config: TranscribeConfig, spec: ModelSpec | None = None,
                   *, echo=print) -> dict:
    """Run the job for ``config`` and return the summary (also written to ``_summary.json``)."""
    import ray

    started = time.monotonic()
    storage = Storage.from_env(config.s3_endpoint)
    spec = spec or resolve_model(config.model, config.revision, config.device, config.dtype)
    prepare_output(storage, config.output, resume=config.resume, overwrite=config.overwrite)
    items, listings = build_index(config.inputs, config.format, storage, config.columns)
    done = existing_ids(storage, config.output) if config.resume else set()
    todo = [item for item in items if item["id"] not in done]
    formats = ", ".join(sorted({listing.format for listing in listings}))
    echo(f"indexed {len(items)} utterances ({formats}) from {len(listings)} input(s); "
         f"{len(todo)} to transcribe, {len(items) - len(todo)} already in the output")

    ensure_ray()
    resources = resolve_resources(config, ray.cluster_resources())
    if todo:
        echo(f"inference: {resources.min_actors}-{resources.max_actors} actor(s), "
             f"{resources.num_gpus:g} GPU and {resources.num_cpus:g} CPU each")
        dataset = build_dataset(todo, config, spec, storage, resources)
        arrow_fs, path = storage.arrow_filesystem(config.output)
        dataset.write_parquet(path, filesystem=arrow_fs)

    table = read_columns(storage, config.output, SUMMARY_COLUMNS)
    summary = summarize(table, new_ids={item["id"] for item in todo},
                        wall_seconds=time.monotonic() - started, model=spec.name_or_path,
                        settings=config.settings())
    write_summary(storage, config.output, summary)
    echo(format_summary(summary, config.output))
    return summary
