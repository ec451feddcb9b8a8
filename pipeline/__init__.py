"""Ray Data stages for corpus-scale transcription with the Granite Speech NAR model.

    from pipeline import TranscribeConfig, run_transcribe
    run_transcribe(TranscribeConfig(inputs=("examples",), output="out/examples"))

The Ray Data API (``pipeline/data.py``): ``read_corpus`` → ``build_transcriber(config)(ds)`` →
``write_results``; ``score``, ``word_error_rate`` and ``pseudo_label_filter`` on Datasets.

The names below are imported on first use (PEP 562), not with the package: every Ray worker
that runs one of the pipeline's stages imports ``pipeline`` to unpickle it, and the light stages
(fetch, score, write) need neither PyTorch nor the model. Importing them all here made each such
worker spend seconds of CPU on ``torch`` as it started (Ray starts and ends workers beyond a node's
CPU count as 0-CPU tasks come and go).
"""

from importlib import import_module

_EXPORTS = {
    "ConfigError": "pipeline.config", "SourceColumns": "pipeline.config", "TranscribeConfig": "pipeline.config",
    "SpeechTranscriber": "pipeline.data", "TranscriberConfig": "pipeline.data",
    "build_transcriber": "pipeline.data", "pseudo_label_filter": "pipeline.data", "read_corpus": "pipeline.data",
    "score": "pipeline.data", "word_error_rate": "pipeline.data", "write_results": "pipeline.data",
    "ModelSpec": "pipeline.model_ref", "ModelUnavailable": "pipeline.model_ref",
    "resolve_model": "pipeline.model_ref",
    "run_transcribe": "pipeline.run",
    "make_normalizer": "pipeline.text",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
