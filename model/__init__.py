"""GraniteSpeechNar (IBM Granite Speech NAR, "NLE") in plain PyTorch.

    from model import load_model, log_mel
    nar = load_model("tests/fixtures/granite-nar-tiny")
    [result] = nar.transcribe([log_mel(waveform_16k)])
"""

from .config import ConfigError, NarConfig
from .features import SAMPLE_RATE, log_mel, num_feature_frames
from .loading import DEFAULT_MODEL, ModelNotFoundError, build_model, load_model, random_model
from .nar import NarModel, Transcription
from .weights import WeightError

__all__ = [
    "DEFAULT_MODEL", "SAMPLE_RATE", "ConfigError", "ModelNotFoundError", "NarConfig", "NarModel",
    "Transcription", "WeightError", "build_model", "load_model", "log_mel", "random_model", "num_feature_frames",
]
