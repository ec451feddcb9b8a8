"""Model configuration read from a checkpoint's ``config.json``.

Two layouts exist (model-spec §1, §5.2):

* **native** (transformers ``granite_speech_nar``): ``encoder_config.cat_hidden_layers``,
  ``encoder_config.vocabulary_size``, ``projector_config.num_hidden_layers`` ...
* **original** (the hub ``main`` remote-code checkpoint): top-level ``encoder_layer_indices``,
  ``encoder_config.bpe_output_dim``, ``projector_config.num_layers`` / ``block_size`` ...

Both are turned into the same frozen dataclasses, which keep what either numerics profile
(``model/numerics.py``) needs: the PR's ``cat_hidden_layers`` and the hub's ``encoder_layer_indices``
(each derived from the other where the file has only one), ``min_edit_sequence_length`` and
``scale_projected_embeddings``. Unknown or inconsistent configs raise :class:`ConfigError` naming the
offending key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

MODEL_TYPE = "granite_speech_nar"
TEXT_MODEL_TYPES = ("granite_speech_nar_text", "granite")


class ConfigError(ValueError):
    """A ``config.json`` that cannot describe a GraniteSpeechNar model."""


@dataclass(frozen=True)
class EncoderConfig:
    input_dim: int = 160
    num_layers: int = 16
    hidden_dim: int = 1024
    feedforward_mult: int = 4
    num_heads: int = 8
    dim_head: int = 128
    output_dim: int = 348  # mid-layer character CTC head, blank = index 0
    context_size: int = 200  # attention block length in frames
    max_pos_emb: int = 512
    conv_kernel_size: int = 15
    conv_expansion_factor: int = 2
    # The PR's exported layers (1-based; 0 = the input_linear output), the final layer appended after
    # them; None when the checkpoint's encoder_layer_indices cannot be written that way (hub only).
    cat_hidden_layers: tuple[int, ...] | None = (4, 8, 12)
    # The hub code's exported layers, in its order: indices into [input_linear output, block 1, ...,
    # block num_layers], resolved to 0..num_layers (the original key's -1 is num_layers).
    encoder_layer_indices: tuple[int, ...] = (4, 8, 12, 16)
    self_conditioning_layer: int = 8
    vocabulary_size: int = 100352  # BPE CTC head, shares the LLM vocabulary
    pooling_window: int = 4


@dataclass(frozen=True)
class ProjectorConfig:
    hidden_size: int = 2048
    intermediate_size: int = 4096
    num_hidden_layers: int = 2
    num_attention_heads: int = 32
    num_key_value_heads: int = 32
    hidden_act: str = "silu"
    window_size: int = 15
    downsample_rate: int = 5
    attention_bias: bool = True
    layer_norm_eps: float = 1e-6

    @property
    def num_queries(self) -> int:
        return self.window_size // self.downsample_rate


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int = 100352
    hidden_size: int = 2048
    intermediate_size: int = 4096
    num_hidden_layers: int = 40
    num_attention_heads: int = 16
    num_key_value_heads: int = 4
    head_dim: int = 128
    rms_norm_eps: float = 1e-5
    hidden_act: str = "silu"
    attention_bias: bool = False
    mlp_bias: bool = False
    attention_multiplier: float = 0.0078125
    embedding_multiplier: float = 12.0
    residual_multiplier: float = 0.22
    logits_scaling: float = 8.0
    rope_theta: float = 10000.0
    max_position_embeddings: int = 4096
    pad_token_id: int | None = 100256
    tie_word_embeddings: bool = True


@dataclass(frozen=True)
class NarConfig:
    encoder: EncoderConfig
    projector: ProjectorConfig
    text: TextConfig
    blank_token_id: int = 100257
    tie_word_embeddings: bool = True
    layout: str = "native"  # "native" or "original": which weight names the checkpoint uses
    # Hub numerics only (model-spec §9): the slotted draft's minimum length (trailing blanks) and
    # whether the projected audio is divided by the text model's embedding_multiplier. The PR's code
    # drops both keys (its behaviour: no minimum, always divided); the hub's defaults are 8 and True.
    min_edit_sequence_length: int = 8
    scale_projected_embeddings: bool = True

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "NarConfig":
        return parse_config(raw)

    @classmethod
    def from_file(cls, path: str | Path) -> "NarConfig":
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read model config {path}: {e}") from e
        return parse_config(raw)


def _require(raw: dict, key: str, where: str) -> Any:
    if key not in raw:
        raise ConfigError(f"config.json: missing key '{where}{key}'")
    return raw[key]


def _pick(raw: dict, names: dict[str, str], defaults: Any, where: str) -> dict[str, Any]:
    """Collect dataclass fields from ``raw``; ``names`` maps field -> key in the file."""
    out = {}
    for f in fields(defaults):
        key = names.get(f.name, f.name)
        if key in raw and raw[key] is not None:
            out[f.name] = raw[key]
    return out


def _positive(cfg: Any, where: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"config.json: '{where}{name}' must be a positive integer, got {value!r}")


def detect_layout(raw: dict[str, Any]) -> str:
    enc = raw.get("encoder_config") or {}
    original = "encoder_layer_indices" in raw or "bpe_output_dim" in enc
    native = "cat_hidden_layers" in enc or "vocabulary_size" in enc
    if original and native:
        raise ConfigError(
            "config.json mixes the original keys (encoder_layer_indices / bpe_output_dim) with the "
            "native ones (cat_hidden_layers / vocabulary_size); convert it fully to one layout"
        )
    return "original" if original else "native"


def _encoder_config(raw: dict, enc: dict, layout: str) -> EncoderConfig:
    names = {"vocabulary_size": "bpe_output_dim", "pooling_window": "bpe_pooling_window"} if layout == "original" else {}
    kw = _pick(enc, names, EncoderConfig, "encoder_config.")
    kw.pop("encoder_layer_indices", None)
    num_layers = kw.get("num_layers", EncoderConfig.num_layers)
    if not isinstance(num_layers, int) or num_layers <= 0:
        raise ConfigError(f"config.json: 'encoder_config.num_layers' must be a positive integer, got {num_layers!r}")
    if layout == "original":
        kw.pop("cat_hidden_layers", None)
        indices = _layer_indices(raw.get("encoder_layer_indices", [4, 8, 12, -1]), num_layers)
        kw["encoder_layer_indices"] = indices
        # The PR's form: the layers before the final one, which it always appends itself.
        kw["cat_hidden_layers"] = indices[:-1] if indices[-1] == num_layers else None
    else:
        cat = tuple(int(i) for i in kw.get("cat_hidden_layers", EncoderConfig.cat_hidden_layers))
        for i in cat:
            if not 0 <= i <= num_layers:
                raise ConfigError(f"config.json: 'encoder_config.cat_hidden_layers' entry {i} is outside 0..{num_layers}")
        kw["cat_hidden_layers"] = cat
        kw["encoder_layer_indices"] = tuple(sorted(set(cat))) + (num_layers,)
    if kw.get("dim_head") is None:
        kw["dim_head"] = kw.get("hidden_dim", EncoderConfig.hidden_dim) // kw.get("num_heads", EncoderConfig.num_heads)
    if kw.get("self_conditioning_layer") is None:
        kw["self_conditioning_layer"] = num_layers // 2
    cfg = EncoderConfig(**kw)
    _positive(cfg, "encoder_config.", ("input_dim", "num_layers", "hidden_dim", "num_heads", "dim_head",
                                       "output_dim", "context_size", "vocabulary_size", "pooling_window"))
    if not 1 <= cfg.self_conditioning_layer <= cfg.num_layers:
        raise ConfigError(
            f"config.json: 'encoder_config.self_conditioning_layer' = {cfg.self_conditioning_layer} "
            f"is outside 1..{cfg.num_layers}"
        )
    if cfg.context_size > cfg.max_pos_emb:
        raise ConfigError(
            f"config.json: 'encoder_config.context_size' ({cfg.context_size}) exceeds 'max_pos_emb' ({cfg.max_pos_emb})"
        )
    return cfg


def _layer_indices(value: Any, num_layers: int) -> tuple[int, ...]:
    """The original key ``encoder_layer_indices``: Python indices into the ``num_layers + 1`` hidden
    states (0 = the input_linear output, -1 = the last block), resolved to ``0..num_layers``."""
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise ConfigError(f"config.json: 'encoder_layer_indices' must be a non-empty list of integers, got {value!r}")
    out = []
    for i in value:
        if not -(num_layers + 1) <= i <= num_layers:
            raise ConfigError(
                f"config.json: 'encoder_layer_indices' entry {i} is outside -{num_layers + 1}..{num_layers} "
                f"(the encoder has {num_layers} layers)"
            )
        out.append(i % (num_layers + 1))
    return tuple(out)


def _projector_config(proj: dict, layout: str) -> ProjectorConfig:
    if layout == "original":
        names = {"num_hidden_layers": "num_layers", "num_attention_heads": "num_heads", "window_size": "block_size",
                 "layer_norm_eps": "layernorm_eps", "attention_bias": "attn_bias"}
        kw = _pick(proj, names, ProjectorConfig, "projector_config.")
        if "mlp_ratio" in proj and "intermediate_size" not in proj:
            kw["intermediate_size"] = int(kw.get("hidden_size", ProjectorConfig.hidden_size) * proj["mlp_ratio"])
    else:
        kw = _pick(proj, {}, ProjectorConfig, "projector_config.")
    if kw.get("num_key_value_heads") is None:
        kw["num_key_value_heads"] = kw.get("num_attention_heads", ProjectorConfig.num_attention_heads)
    cfg = ProjectorConfig(**kw)
    _positive(cfg, "projector_config.", ("hidden_size", "intermediate_size", "num_hidden_layers",
                                         "num_attention_heads", "window_size", "downsample_rate"))
    if cfg.window_size % cfg.downsample_rate:
        raise ConfigError(
            f"config.json: 'projector_config.window_size' ({cfg.window_size}) must be a multiple of "
            f"'downsample_rate' ({cfg.downsample_rate})"
        )
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ConfigError("config.json: 'projector_config.hidden_size' must be divisible by 'num_attention_heads'")
    if cfg.num_key_value_heads != cfg.num_attention_heads:
        raise ConfigError("config.json: 'projector_config.num_key_value_heads' must equal 'num_attention_heads'")
    if cfg.hidden_act != "silu":
        raise ConfigError(f"config.json: 'projector_config.hidden_act' = {cfg.hidden_act!r} is not supported (silu)")
    return cfg


def _text_config(text: dict) -> TextConfig:
    model_type = text.get("model_type", "granite_speech_nar_text")
    if model_type not in TEXT_MODEL_TYPES:
        raise ConfigError(f"config.json: 'text_config.model_type' = {model_type!r} is not one of {TEXT_MODEL_TYPES}")
    kw = _pick(text, {}, TextConfig, "text_config.")
    rope = text.get("rope_parameters") or {}
    if "rope_theta" in rope:
        kw["rope_theta"] = float(rope["rope_theta"])
    if rope.get("rope_type", "default") != "default":
        raise ConfigError(f"config.json: 'text_config.rope_parameters.rope_type' = {rope['rope_type']!r} is not supported")
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
        _require(text, key, "text_config.")
    if kw.get("num_key_value_heads") is None:
        kw["num_key_value_heads"] = kw["num_attention_heads"]
    if kw.get("head_dim") is None:
        kw["head_dim"] = kw["hidden_size"] // kw["num_attention_heads"]
    cfg = TextConfig(**kw)
    _positive(cfg, "text_config.", ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                    "num_attention_heads", "num_key_value_heads", "head_dim"))
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise ConfigError("config.json: 'text_config.num_attention_heads' must be a multiple of 'num_key_value_heads'")
    if cfg.hidden_act != "silu":
        raise ConfigError(f"config.json: 'text_config.hidden_act' = {cfg.hidden_act!r} is not supported (silu)")
    return cfg


def parse_config(raw: dict[str, Any]) -> NarConfig:
    """Build a :class:`NarConfig` from a parsed ``config.json`` of either layout."""
    if not isinstance(raw, dict):
        raise ConfigError("config.json must hold a JSON object")
    model_type = raw.get("model_type")
    if model_type != MODEL_TYPE:
        raise ConfigError(
            f"config.json: 'model_type' = {model_type!r}; only {MODEL_TYPE!r} (IBM Granite Speech NAR) is supported"
        )
    layout = detect_layout(raw)
    encoder = _encoder_config(raw, _require(raw, "encoder_config", ""), layout)
    projector = _projector_config(_require(raw, "projector_config", ""), layout)
    text_raw = _require(raw, "text_config", "")
    text = _text_config(text_raw)
    blank = int(raw.get("blank_token_id", text_raw.get("eos_token_id", 100257)))
    if not 0 <= blank < text.vocab_size:
        raise ConfigError(f"config.json: 'blank_token_id' = {blank} is outside the vocabulary (0..{text.vocab_size - 1})")
    if encoder.vocabulary_size != text.vocab_size:
        key = "bpe_output_dim" if layout == "original" else "vocabulary_size"
        raise ConfigError(
            f"config.json: 'encoder_config.{key}' ({encoder.vocabulary_size}) must equal "
            f"'text_config.vocab_size' ({text.vocab_size}): the draft ids feed the editor"
        )
    min_edit = raw.get("min_edit_sequence_length", NarConfig.min_edit_sequence_length)
    if isinstance(min_edit, bool) or not isinstance(min_edit, int) or min_edit < 1:
        raise ConfigError(f"config.json: 'min_edit_sequence_length' must be a positive integer, got {min_edit!r}")
    scale = raw.get("scale_projected_embeddings", NarConfig.scale_projected_embeddings)
    if not isinstance(scale, bool):
        raise ConfigError(f"config.json: 'scale_projected_embeddings' must be true or false, got {scale!r}")
    return NarConfig(
        encoder=encoder,
        projector=projector,
        text=text,
        blank_token_id=blank,
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", text.tie_word_embeddings)),
        layout=layout,
        min_edit_sequence_length=min_edit,
        scale_projected_embeddings=scale,
    )
