"""Ray Data stages for corpus-scale transcription with the Granite Speech NAR model.

    from pipeline import TranscribeConfig, run_transcribe
    run_transcribe(TranscribeConfig(inputs=("examples",), output="out/examples"))
"""

from pipeline.config import ConfigError, SourceColumns, TranscribeConfig
from pipeline.model_ref import ModelSpec, ModelUnavailable, resolve_model
from pipeline.run import run_transcribe
from pipeline.text import make_normalizer

__all__ = ["ConfigError", "ModelSpec", "ModelUnavailable", "SourceColumns", "TranscribeConfig",
           "make_normalizer", "resolve_model", "run_transcribe"]
