"""``load_model``: a local checkpoint folder or a hub id -> a ready :class:`NarModel`.

The model is built on the meta device and the checkpoint's tensors are assigned into it, so no
memory is spent on random initialisation. Only safetensors are read; nothing from the checkpoint
is ever executed (``auto_map`` entries are ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from .config import NarConfig
from .nar import NarModel
from .text import TextDecoder
from .weights import check_and_match, read_safetensors, to_native, weight_files

DEFAULT_MODEL = "ibm-granite/granite-speech-4.1-2b-nar"
CONFIG_FILE = "config.json"
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelNotFoundError(FileNotFoundError):
    """The model could not be found locally nor fetched from the hub."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return device


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype {dtype} is not supported; use float32, bfloat16 or float16")
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"dtype {dtype!r} is not one of float32, bfloat16, float16") from None


def resolve_checkpoint(name_or_path: str | Path, revision: str | None = None) -> tuple[Path, str]:
    """Return (local folder, display name): ``path as given`` for folders, ``hub-id@commit`` for hub ids."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{name_or_path} is a file; pass the checkpoint folder (with config.json) instead")
        return path, str(name_or_path)
    name = str(name_or_path)
    if not _HUB_ID.match(name):
        raise ModelNotFoundError(f"model {name!r} is neither an existing folder nor a hub id like 'org/name'")
    folder = _download(name, revision)
    return folder, f"{name}@{folder.name}"


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download  # imported lazily: only hub ids need it

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except Exception as online_error:  # noqa: BLE001 - offline, gated, unknown repo... try the cache
        try:
            return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES, local_files_only=True))
        except Exception:  # noqa: BLE001
            raise ModelNotFoundError(
                f"model {repo_id!r} is not in the local Hugging Face cache and the hub could not be reached "
                f"({type(online_error).__name__}); pass a local checkpoint folder instead, "
                "e.g. --model tests/fixtures/granite-nar-tiny"
            ) from online_error


def build_model(config: NarConfig, device: torch.device | str = "meta", *, numerics=None) -> NarModel:
    """An uninitialised :class:`NarModel` (on the meta device by default: shapes only)."""
    with torch.device(device):
        return NarModel(config, numerics=numerics)


def load_model(name_or_path: str | Path, *, revision: str | None = None, device=None, dtype=None,
               numerics: str | None = None) -> NarModel:
    """Load GraniteSpeechNar from a checkpoint folder (native or original layout) or a hub id.

    ``device=None`` picks CUDA when available, else CPU; ``dtype=None`` means float32 on CPU and
    bfloat16 on CUDA. ``numerics`` (``"hub"`` or ``"transformers"``, model-spec §9) picks whose
    arithmetic the model reproduces; ``None`` means the checkpoint's own: ``"hub"`` for the original
    layout (the hub's remote-code checkpoint), ``"transformers"`` for the native one (see
    :func:`model.checkpoint_numerics`). The model is returned in eval mode.
    Raises ``ValueError`` for an unknown ``numerics``.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    folder, name = resolve_checkpoint(name_or_path, revision)
    if not (folder / CONFIG_FILE).is_file():
        raise ModelNotFoundError(f"{folder} has no {CONFIG_FILE}: it is not a model checkpoint folder")
    config = NarConfig.from_file(folder / CONFIG_FILE)
    model = build_model(config, numerics=numerics)
    tensors = to_native(read_safetensors(weight_files(folder)), config.layout)
    state = check_and_match(model, tensors)
    model.load_state_dict(state, strict=False, assign=True)
    _materialise_leftovers(model)
    model = model.to(device=device, dtype=dtype).eval()
    model.decoder = TextDecoder.from_folder(folder)
    model.name = name
    return model


def _materialise_leftovers(model: NarModel) -> None:
    """Buffers a checkpoint may omit (BatchNorm ``num_batches_tracked``) get real zeros."""
    for module in model.modules():
        for key, buf in list(module._buffers.items()):
            if buf is not None and buf.is_meta:
                module._buffers[key] = torch.zeros(buf.shape, dtype=buf.dtype)


def random_model(config: NarConfig, *, seed: int = 0, device=None, dtype=None, numerics=None) -> NarModel:
    """A model of the given architecture with seeded random weights (benchmarks, tests; no tokenizer).

    Linear/conv weights ~ N(0, 1/fan_in), norms 1, biases 0, BatchNorm statistics (0, 1): activations
    keep a sane scale through every layer, so timings reflect real work.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    model = build_model(config, numerics=numerics).to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) * fan_in**-0.5)
            else:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()
    model.name = f"random-{seed}"
    return model.to(device=device, dtype=dtype).eval()
