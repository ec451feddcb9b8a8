"""Job configuration: frozen dataclasses validated up front, with messages naming the flag."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MODEL = "ibm-granite/granite-speech-4.1-2b-nar"
FORMATS = ("auto", "audio", "manifest", "parquet", "webdataset", "librispeech", "kaldi",
           "nemo-tarred", "lhotse", "arrow")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")
NORMALIZERS = ("english", "leaderboard", "whisper", "basic", "none")
# Numerics profiles (model-spec §9): None is the checkpoint's own (hub: original layout,
# transformers: native layout).
NUMERICS = ("hub", "transformers")
TIMESTAMPS = ("none", "segment", "word")
SUBTITLE_FORMATS = ("srt", "vtt", "ctm")
FEATURES_ON = ("cpu", "accelerator")
# 50 feature frames per second: 8000 frames is 160 s of audio in one padding-free forward.
DEFAULT_MAX_FRAMES_PER_PACK = 8000


class ConfigError(ValueError):
    """A setting the user can fix; the message names the flag and the value."""


@dataclass(frozen=True)
class SourceColumns:
    """Column names in manifests and Parquet shards (``None``: the format's default)."""

    audio: str | None = None   # manifest: audio_filepath|audio|path; parquet: audio
    text: str = "text"
    id: str = "id"
    duration: str = "duration"   # manifest: seconds of the span to decode (NeMo)
    offset: str = "offset"       # manifest: start of that span in seconds (NeMo)


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """The settings the jobs and the Ray Data API share, under the jobs' flag names (``--max-frames-
    per-pack`` is ``max_frames_per_pack``) with the same defaults: the model, the inference pool,
    the audio rules and the scoring normaliser."""

    model: str = DEFAULT_MODEL
    revision: str | None = None
    editing_steps: int = 1
    device: str = "auto"
    dtype: str | None = None
    actors: tuple[int, int] | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float | None = None
    max_frames_per_pack: int = DEFAULT_MAX_FRAMES_PER_PACK
    max_duration_seconds: float = 3600.0
    max_segment_seconds: float = 40.0
    silence_dbfs: float = -60.0
    normalizer: str = "leaderboard"
    s3_endpoint: str | None = None
    with_audio: bool = False
    # Numerics profile (model-spec §9); None: the checkpoint's own, resolved from its config.json.
    numerics: str | None = None
    # Language of the references (ISO 639-1): picks the leaderboard normaliser's language and, when
    # not English, the multilingual scoring rules (pipeline.text); set per dataset by jobs.evaluate.
    language: str = "en"


@dataclass(frozen=True, kw_only=True)
class TranscribeConfig(RunSettings):
    inputs: tuple[str, ...]
    output: str
    format: str = "auto"
    resume: bool = False
    overwrite: bool = False
    columns: SourceColumns = field(default_factory=SourceColumns)
    # Base URI for relative audio paths in manifests (Common Voice's ``clips/``); None: the
    # manifest's own folder.
    audio_root: str | None = None
    # Evaluation: drop rows whose reference normalises (with this normaliser) to nothing scorable
    # before decoding; None keeps every row (transcribe, pseudo_label).
    reference_filter: str | None = None
    # ``--channel``: a 0-based channel (int) for every input without its own ``channel`` field,
    # or ``"all"`` (one row per channel, ids ``<id>#ch<N>``); None: the mean of the channels.
    channel: int | str | None = None
    # Word/segment times from the BPE CTC head, and subtitle files under OUT/subtitles/.
    timestamps: str = "none"
    subtitles: tuple[str, ...] = ()
    # Where log-mel features are computed: in the CPU decode tasks, or in the inference actor.
    features_on: str = "cpu"
    # Benchmark only (jobs.benchmark --simulate-rtfx): the inference actors' forward is replaced by
    # the stand-in accelerator at this RTFx (inf: no wait); None runs the model.
    simulate_rtfx: float | None = None

    def __post_init__(self) -> None:
        validate(self)

    def settings(self) -> dict:
        """The settings recorded in ``_summary.json`` (no credentials live in the config)."""
        return {
            "inputs": list(self.inputs), "output": self.output, "format": self.format,
            "model": self.model, "revision": self.revision, "editing_steps": self.editing_steps,
            "device": self.device, "dtype": self.dtype,
            "actors": list(self.actors) if self.actors else None,
            "gpus_per_actor": self.gpus_per_actor, "cpus_per_actor": self.cpus_per_actor,
            "max_frames_per_pack": self.max_frames_per_pack,
            "max_duration_seconds": self.max_duration_seconds,
            "max_segment_seconds": self.max_segment_seconds,
            "silence_dbfs": self.silence_dbfs, "normalizer": self.normalizer,
            "s3_endpoint": self.s3_endpoint, "resume": self.resume, "overwrite": self.overwrite,
            "with_audio": self.with_audio, "audio_root": self.audio_root,
            "reference_filter": self.reference_filter, "channel": self.channel,
            "language": self.language,
            "numerics": self.numerics, "timestamps": self.timestamps,
            "subtitles": list(self.subtitles), "features_on": self.features_on,
            "columns": {"audio": self.columns.audio, "text": self.columns.text,
                        "id": self.columns.id, "duration": self.columns.duration,
                        "offset": self.columns.offset},
        }


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _one_of(flag: str, value, allowed) -> None:
    _require(value in allowed, f"{flag} {value!r} is not one of {', '.join(map(str, allowed))}")


def validate(config: TranscribeConfig) -> None:
    _require(len(config.inputs) > 0, "--input is required (a folder, prefix, manifest or shards)")
    _require(bool(config.output), "--output is required (a local folder or s3://bucket/prefix)")
    _one_of("--format", config.format, FORMATS)
    _one_of("--device", config.device, DEVICES)
    _one_of("--normalizer", config.normalizer, NORMALIZERS)
    if config.dtype is not None:
        _one_of("--dtype", config.dtype, DTYPES)
    if config.numerics is not None:
        _one_of("--numerics", config.numerics, NUMERICS)
    _one_of("--timestamps", config.timestamps, TIMESTAMPS)
    for fmt in config.subtitles:
        _one_of("--subtitles", fmt, SUBTITLE_FORMATS)
    _one_of("--features-on", config.features_on, FEATURES_ON)
    _require(config.editing_steps >= 1,
             f"--editing-steps must be at least 1, got {config.editing_steps}")
    if config.actors is not None:
        low, high = config.actors
        _require(1 <= low <= high,
                 f"--actors MIN,MAX needs 1 <= MIN <= MAX, got {low},{high}")
    _require(config.gpus_per_actor is None or config.gpus_per_actor >= 0,
             f"--gpus-per-actor must be >= 0, got {config.gpus_per_actor}")
    _require(config.cpus_per_actor is None or config.cpus_per_actor > 0,
             f"--cpus-per-actor must be > 0, got {config.cpus_per_actor}")
    _require(config.max_frames_per_pack > 0,
             f"--max-frames-per-pack must be > 0, got {config.max_frames_per_pack}")
    _require(config.max_duration_seconds > 0,
             f"--max-duration-seconds must be > 0, got {config.max_duration_seconds}")
    _require(config.max_segment_seconds > 0,
             f"--max-segment-seconds must be > 0, got {config.max_segment_seconds}")
    _require(config.channel is None or config.channel == "all"
             or (isinstance(config.channel, int) and config.channel >= 0),
             f"--channel must be a channel number (0, 1, ...) or 'all', got {config.channel!r}")
    _require(not (config.resume and config.overwrite),
             "--resume and --overwrite exclude each other: pick one")


def parse_channel(text: str | None) -> int | str | None:
    """``--channel`` text → ``None``, ``"all"`` or a channel number."""
    if text is None or text.strip().lower() == "all":
        return None if text is None else "all"
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--channel must be a channel number (0, 1, ...) or 'all', got {text!r}") \
            from None


def parse_actors(text: str) -> tuple[int, int]:
    """``"2"`` → (2, 2); ``"1,4"`` → (1, 4)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--actors expects MIN,MAX integers (e.g. 1,4), got {text!r}") from None
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    if len(numbers) != 2:
        raise ConfigError(f"--actors expects MIN,MAX (two integers), got {text!r}")
    return numbers[0], numbers[1]


@dataclass(frozen=True)
class ActorResources:
    """What each inference actor asks Ray for, resolved once against the cluster."""

    min_actors: int
    max_actors: int
    num_gpus: float
    num_cpus: float


def resolve_resources(config: TranscribeConfig, cluster: dict) -> ActorResources:
    """Inference pool sizing from the flags and ``ray.cluster_resources()``.

    With GPUs: one actor per GPU, one GPU and one CPU each. Without: ``num_gpus=0`` and the CPUs
    split between one actor and the decoders.
    """
    gpus = float(cluster.get("GPU", 0))
    cpus = float(cluster.get("CPU", 1))
    num_gpus = config.gpus_per_actor if config.gpus_per_actor is not None else (1.0 if gpus else 0.0)
    if config.cpus_per_actor is not None:
        num_cpus = config.cpus_per_actor
    else:
        num_cpus = 1.0 if num_gpus else max(1.0, float(int(cpus // 2)))
    if config.actors is not None:
        low, high = config.actors
    elif num_gpus:
        low, high = 1, max(1, int(gpus // num_gpus))
    else:
        low, high = 1, 1
    return ActorResources(min_actors=low, max_actors=high, num_gpus=num_gpus, num_cpus=num_cpus)
