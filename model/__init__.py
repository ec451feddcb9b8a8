"""GraniteSpeechNar (IBM Granite Speech NAR, "NLE") in plain PyTorch.

    from model import load_model, log_mel
    nar = load_model("tests/fixtures/granite-nar-tiny")
    [result] = nar.transcribe([log_mel(waveform_16k)])
"""

from .config import ConfigError, EncoderConfig, NarConfig, ProjectorConfig, TextConfig
from .ctc import ctc_collapse
from .features import SAMPLE_RATE, log_mel, num_feature_frames
from .loading import (
    DEFAULT_MODEL, ModelNotFoundError, build_model, load_model, random_model, resolve_device, resolve_dtype,
)
from .nar import Encoded, NarModel, Transcription
from .packing import ceil_div
from .weights import WeightError, weight_files

__all__ = [
    "DEFAULT_MODEL", "SAMPLE_RATE", "ConfigError", "Encoded", "EncoderConfig", "ModelNotFoundError", "NarConfig",
    "NarModel", "ProjectorConfig", "TextConfig", "Transcription", "WeightError", "build_model", "ceil_div",
    "ctc_collapse", "load_model", "log_mel", "num_feature_frames", "random_model", "resolve_device", "resolve_dtype",
    "weight_files",
]
