"""Seeded synthetic inputs for the benchmark: model sizes, a LibriSpeech-like corpus, checkpoints."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from model import EncoderConfig, NarConfig, ProjectorConfig, TextConfig

SAMPLE_RATE = 16000
SIZES = ("tiny", "small", "real")


def size_config(size: str) -> NarConfig:
    """The real architecture at a chosen scale (``real`` = the checkpoint's dimensions)."""
    real = NarConfig(encoder=EncoderConfig(), projector=ProjectorConfig(), text=TextConfig())
    if size == "real":
        return real
    if size == "small":
        return replace(
            real,
            encoder=replace(real.encoder, num_layers=8, hidden_dim=256, num_heads=4, dim_head=64,
                            cat_hidden_layers=(2, 4, 6), self_conditioning_layer=4, vocabulary_size=4096),
            projector=replace(real.projector, hidden_size=512, intermediate_size=1024, num_attention_heads=8,
                              num_key_value_heads=8),
            text=replace(real.text, vocab_size=4096, hidden_size=512, intermediate_size=1024, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=2, head_dim=64, attention_multiplier=1 / 64,
                         pad_token_id=4094),
            blank_token_id=4095,
        )
    if size == "tiny":
        return replace(
            real,
            encoder=replace(real.encoder, num_layers=4, hidden_dim=64, num_heads=4, dim_head=16, output_dim=12,
                            context_size=40, max_pos_emb=64, cat_hidden_layers=(1, 2, 3), self_conditioning_layer=2,
                            vocabulary_size=512),
            projector=replace(real.projector, hidden_size=96, intermediate_size=192, num_attention_heads=4,
                              num_key_value_heads=4),
            text=replace(real.text, vocab_size=512, hidden_size=96, intermediate_size=192, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=24, attention_multiplier=1 / 24,
                         pad_token_id=510),
            blank_token_id=511,
        )
    raise ValueError(f"--size must be one of {', '.join(SIZES)}, got {size!r}")


def corpus_durations(count: int, seed: int) -> list[float]:
    """LibriSpeech-like mix: most 2–20 s, a tail to 35 s, a few under 1 s; deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        r = rng.random()
        if r < 0.08:
            out.append(float(rng.uniform(0.3, 1.0)))
        elif r < 0.90:
            out.append(float(np.clip(rng.lognormal(np.log(8.0), 0.55), 2.0, 20.0)))
        else:
            out.append(float(rng.uniform(20.0, 35.0)))
    return out


def speech_like(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Voiced syllables with a gliding pitch, noise bursts and pauses, over faint noise (float32, 16 kHz)."""
    n = max(int(duration_s * SAMPLE_RATE), 480)
    t = np.arange(n) / SAMPLE_RATE
    pitch = 110 + 40 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllable = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 5) * t)) ** 2
    bursts = rng.standard_normal(n) * (np.sin(2 * np.pi * 1.3 * t) > 0.9)
    wave = 0.25 * voiced * syllable + 0.05 * bursts + 0.003 * rng.standard_normal(n)
    return wave.astype(np.float32)


def corpus_waveforms(durations: list[float], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return [speech_like(d, rng) for d in durations]


def native_config_dict(cfg: NarConfig) -> dict:
    """``config.json`` in the native layout for ``cfg`` (what :func:`model.NarConfig.from_file` reads)."""
    enc = asdict(cfg.encoder)
    enc["cat_hidden_layers"] = list(enc["cat_hidden_layers"])
    enc["model_type"] = "granite_speech_nar_encoder"
    text = asdict(cfg.text)
    text["rope_parameters"] = {"rope_theta": text.pop("rope_theta"), "rope_type": "default"}
    text["model_type"] = "granite_speech_nar_text"
    text["bos_token_id"] = text["eos_token_id"] = cfg.blank_token_id
    proj = asdict(cfg.projector)
    proj["model_type"] = "granite_speech_nar_projector"
    return {"model_type": "granite_speech_nar", "architectures": ["GraniteSpeechNarForCTC"],
            "blank_token_id": cfg.blank_token_id, "tie_word_embeddings": cfg.tie_word_embeddings,
            "encoder_config": enc, "projector_config": proj, "text_config": text}


def write_checkpoint(model, folder: Path) -> Path:
    """Save a (random) model as a native checkpoint folder with a word-level tokenizer of its vocabulary."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    folder.mkdir(parents=True, exist_ok=True)
    cfg: NarConfig = model.config
    (folder / "config.json").write_text(json.dumps(native_config_dict(cfg), indent=1))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    vocab = {f"w{i}": i for i in range(cfg.text.vocab_size)}
    tok = Tokenizer(WordLevel(vocab, unk_token="w0"))
    tok.pre_tokenizer = WhitespaceSplit()
    tok.save(str(folder / "tokenizer.json"))
    return folder


def calibrate_drafts(model, features: list, tokens_per_second: float = 3.5) -> float:
    """Raise the BPE head's blank bias until the drafts of ``features`` hold about ``tokens_per_second``
    tokens per second of audio, as real speech does (~3.5 BPE tokens/s).

    A random head almost never picks the blank, and the pooled states share one dominant direction
    that makes it pick the same token everywhere; so that direction is projected out of the head
    (diverse tokens) and the blank bias is raised (realistic length). Returns the bias added.
    Deterministic for given weights and features.
    """
    import torch

    enc = model.encode(features)
    head = model.model.out_bpe
    blank = model.config.blank_token_id
    seconds = sum(f.shape[0] for f in features) * 0.02
    with torch.inference_mode():
        direction = enc.encoder.pooled.float().mean(0)
        direction = direction / direction.norm()
        weight = head.weight.float()
        head.weight.copy_(weight - (weight @ direction)[:, None] * direction[None, :])
        logits = torch.nn.functional.linear(enc.encoder.pooled, head.weight, head.bias).float()
        blank_logit = logits[:, blank].clone()
        logits[:, blank] = float("-inf")
        best, tokens = logits.max(-1)
        margin = best - blank_logit
        shift = 0.0
        for blank_fraction in torch.linspace(0.95, 0.0, 39).tolist():
            shift = float(torch.quantile(margin, blank_fraction)) + 1e-3
            seq = torch.where(margin < shift, torch.full_like(tokens, blank), tokens)
            new = torch.ones_like(seq, dtype=torch.bool)
            new[1:] = seq[1:] != seq[:-1]
            if int((new & (seq != blank)).sum()) >= tokens_per_second * seconds:
                break
        head.bias[blank] += shift
    return shift
