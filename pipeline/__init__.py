"""Ray Data stages for corpus-scale transcription with the Granite Speech NAR model.

    from pipeline import TranscribeConfig, run_transcribe
    run_transcribe(TranscribeConfig(inputs=("examples",), output="out/examples"))

The Ray Data API (``pipeline/data.py``): ``read_corpus`` → ``build_transcriber(config)(ds)`` →
``write_results``; ``score``, ``word_error_rate`` and ``pseudo_label_filter`` on Datasets.
"""

from pipeline.config import ConfigError, SourceColumns, TranscribeConfig
from pipeline.data import (
    SpeechTranscriber, TranscriberConfig, build_transcriber, pseudo_label_filter, read_corpus,
    score, word_error_rate, write_results,
)
from pipeline.model_ref import ModelSpec, ModelUnavailable, resolve_model
from pipeline.run import run_transcribe
from pipeline.text import make_normalizer

__all__ = ["ConfigError", "ModelSpec", "ModelUnavailable", "SourceColumns", "SpeechTranscriber",
           "TranscribeConfig", "TranscriberConfig", "build_transcriber", "make_normalizer",
           "pseudo_label_filter", "read_corpus", "resolve_model", "run_transcribe", "score",
           "word_error_rate", "write_results"]
