"""No deprecated Ray, torch, pyarrow or fsspec API in how our code builds and configures the job
(``pyproject.toml`` also turns such warnings attributed to our modules into errors), and the
console filters: Ray's notices hidden, Ray Data reduced to one progress line per stage."""

from __future__ import annotations

import logging
import warnings

import pyarrow as pa

from pipeline.cluster import _NativeStderrFilter, _ProgressOnly, _QuietFilter, configure_ray_data
from pipeline.config import TranscribeConfig, resolve_resources
from pipeline.model_ref import resolve_model
from pipeline.run import build_dataset
from pipeline.sources.index import IndexSettings, build_index
from pipeline.sources.listing import list_inputs, plan_units
from pipeline.storage import Storage
from tests.conftest import TINY_AUDIO, TINY_MODEL


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("ray.data", level, "x.py", 1, message, None, None)


def test_building_the_job_uses_no_deprecated_api(ray_session, tmp_path):
    from ray.data import DataContext

    DataContext.get_current()     # Ray's own construction warns about its own field: not ours
    config = TranscribeConfig(inputs=(str(TINY_AUDIO),), output=str(tmp_path / "o"))
    storage = Storage.from_env(None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configure_ray_data()
        listings = list_inputs(config.inputs, config.format, storage)
        index = build_index(plan_units(listings), IndexSettings(storage=storage,
                                                                columns=config.columns))
        resources = resolve_resources(config, ray_session.cluster_resources())
        dataset = build_dataset(index, pa.array([], pa.string()), config,
                                resolve_model(str(TINY_MODEL)), storage, resources)
    assert index.rows == 6 and dataset is not None
    found = [f"{w.category.__name__}: {w.message}" for w in caught
             if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert found == []


def test_console_filters():
    progress, quiet = _ProgressOnly(), _QuietFilter()
    assert progress.filter(record("MapBatches(Transcriber): 3/5"))
    assert progress.filter(record("Write: 0/?"))
    for hidden in ("Total Progress: 0/?", "Active & requested resources: 0/2 CPU",
                   "  Tasks: 0; Actors: 1 (running=0)", "", "======= Running Dataset: d =======",
                   "Starting execution of Dataset d"):
        assert not progress.filter(record(hidden)), hidden
    assert progress.filter(record("Something failed", logging.WARNING))
    assert not quiet.filter(record("Token authentication is enabled for this Ray cluster. Set",
                                   logging.WARNING))
    assert quiet.filter(record("Failed to connect", logging.WARNING))


def test_native_stderr_filter_drops_only_the_false_alarm(capfd):
    import os

    native = _NativeStderrFilter()
    os.write(2, b"[2026 E 1 1] core_worker.cc:2465: Actor with class name: 'MapWorker' has "
                b"constructor arguments in the object store and max_restarts > 0. See x\n")
    os.write(2, b"[2026 E 1 1] core_worker.cc:1: something else\n")
    os.write(2, b"\rprogress 50%")
    native.close()
    assert capfd.readouterr().err == "[2026 E 1 1] core_worker.cc:1: something else\n\rprogress 50%"
