"""Reading checkpoint weights: safetensors only, both layouts through one rename table.

Native names (transformers ``GraniteSpeechNarForCTC``) are this package's module names, so a native
checkpoint loads as is; the original (hub ``main``) names are renamed by :data:`ORIGINAL_TO_NATIVE`.
The original projector's LayerNorms must be identity affines: they are checked and dropped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open

SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

# Applied in order; the first matching prefix wins (model-spec §5.2).
ORIGINAL_TO_NATIVE: tuple[tuple[str, str], ...] = (
    ("language_model.model.", "model.language_model."),
    ("language_model.lm_head.", "lm_head."),
    ("encoder.out_bpe.", "model.out_bpe."),
    ("encoder.", "model.encoder."),
    ("projector.layer_projector.", "model.projector.proj."),
    ("projector.out_linear.", "model.projector.qformer.linear."),
    ("projector.query", "model.projector.qformer.queries"),
    ("projector.window_positions", "model.projector.qformer.pos_emb"),
    ("projector.", "model.projector."),
)
_CROSS_ATTENTION = re.compile(r"(qformer\.layers\.\d+\.)cross_attention\.")
_IDENTITY_NORM = re.compile(r"^projector\..*(layer_norms\.\d+|out_norm|attn_norm|mlp_norm)\.(weight|bias)$")
# Keys a checkpoint may leave out (unused in eval) and keys it may carry that are not needed here
# (a tied head stored explicitly).
MAY_BE_MISSING = re.compile(r"num_batches_tracked$")
MAY_BE_EXTRA = re.compile(r"(^lm_head\.weight$|num_batches_tracked$)")


class WeightError(ValueError):
    """Checkpoint weights that do not fit the configured architecture."""


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint folder (single file or sharded with an index)."""
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError) as e:
            raise WeightError(f"{index}: not a valid safetensors index ({e})") from e
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise WeightError(f"{folder}: shards listed in {SAFETENSORS_INDEX} are missing: {', '.join(missing)}")
        return [folder / s for s in shards]
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise WeightError(
            f"{folder} holds only pickle weights ({', '.join(pickles)}); they can execute code when loaded, so "
            "they are refused. Convert the checkpoint to safetensors (e.g. with the `safetensors` convert tool)."
        )
    raise WeightError(f"{folder} has no *.safetensors weights: it is not a model checkpoint folder")


def read_safetensors(files: list[Path]) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    if key in tensors:
                        raise WeightError(f"tensor {key!r} appears in more than one shard ({path.name})")
                    tensors[key] = f.get_tensor(key)
        except WeightError:
            raise
        except Exception as e:  # noqa: BLE001 - safetensors raises several types for corrupt files
            raise WeightError(f"cannot read {path}: {e}") from e
    return tensors


def rename_original(key: str) -> str:
    for old, new in ORIGINAL_TO_NATIVE:
        if key.startswith(old):
            key = new + key[len(old):]
            break
    return _CROSS_ATTENTION.sub(r"\1cross_attn.", key)


def to_native(tensors: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Rename an original-layout state dict to native names, checking and dropping identity norms."""
    if layout == "native":
        return dict(tensors)
    out = {}
    for key, value in tensors.items():
        if _IDENTITY_NORM.match(key):
            expected = 1.0 if key.endswith(".weight") else 0.0
            if not torch.all(value == expected):
                raise WeightError(
                    f"{key}: the original projector norms must be identity (weight 1, bias 0) to be dropped; "
                    "this checkpoint has other values and is not supported"
                )
            continue
        out[rename_original(key)] = value
    return out


def check_and_match(module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Compare a native-named state dict with ``module``; report every problem in one error."""
    expected = {k: v.shape for k, v in module.state_dict(keep_vars=True).items()}
    missing = sorted(k for k in expected if k not in tensors and not MAY_BE_MISSING.search(k))
    unexpected = sorted(k for k in tensors if k not in expected and not MAY_BE_EXTRA.search(k))
    wrong = sorted(
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k])}"
        for k, v in tensors.items() if k in expected and tuple(v.shape) != tuple(expected[k])
    )
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): " + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected[:20]) + (" ..." if len(unexpected) > 20 else ""))
    if wrong:
        problems.append(f"shape mismatches ({len(wrong)}): " + "; ".join(wrong[:20]))
    if problems:
        raise WeightError("checkpoint weights do not match config.json:\n  " + "\n  ".join(problems))
    return {k: v for k, v in tensors.items() if k in expected}
