"""GraniteSpeechNar (IBM Granite Speech NAR, "NLE") in plain PyTorch.

    from model import load_model
    nar = load_model("tests/fixtures/granite-nar-tiny")   # numerics="hub" | "transformers" | None
    [result] = nar.transcribe([nar.features(waveform_16k)])
"""

from .config import ConfigError, EncoderConfig, NarConfig, ProjectorConfig, TextConfig
from .ctc import ctc_collapse
from .features import SAMPLE_RATE, log_mel, min_samples, num_feature_frames
from .loading import (
    DEFAULT_MODEL, ModelNotFoundError, build_model, load_model, random_model, resolve_device, resolve_dtype,
)
from .nar import Encoded, NarModel, Transcription
from .numerics import LEADERBOARD_REVISION, NUMERICS, Numerics, checkpoint_numerics, get_numerics
from .packing import ceil_div
from .weights import WeightError, weight_files

__all__ = [
    "DEFAULT_MODEL", "LEADERBOARD_REVISION", "NUMERICS", "SAMPLE_RATE", "ConfigError", "Encoded", "EncoderConfig",
    "ModelNotFoundError", "NarConfig", "NarModel", "Numerics", "ProjectorConfig", "TextConfig", "Transcription",
    "WeightError", "build_model", "ceil_div", "checkpoint_numerics", "ctc_collapse", "get_numerics", "load_model",
    "log_mel", "min_samples", "num_feature_frames", "random_model", "resolve_device", "resolve_dtype",
    "weight_files",
]
