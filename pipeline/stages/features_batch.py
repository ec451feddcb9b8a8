"""Log-mel features of a whole pack in one batched call (``--features-on accelerator``).

The same numbers as :func:`model.log_mel` per utterance (model-spec §2, and §9.1 for the hub
profile), computed for many utterances at once on any torch device: each waveform is reflect-padded
by ``n_fft / 2`` on both sides (``torch.stft(center=True)``) and rounded up to whole hops, the
padded waveforms are laid end to end, so every utterance's frames start on one shared 160-sample
grid; one ``unfold`` takes all frames, and the mel power of every frame follows (one FFT and one mel
product on a GPU; on the CPU in slices of ``CPU_FRAMES_PER_SLICE`` frames that stay in cache). One
gather keeps each utterance's frames (transformers: ``N // 160 + 1``, an odd count padded with one
zero mel frame; hub: the first ``2 · (N // 320)``); the log and the 80 dB floor under each
utterance's own maximum are applied with index and scatter operations, never a Python loop over
frames.
"""

from __future__ import annotations

import numpy as np
import torch

from model.features import (
    DYNAMIC_RANGE, FEATURE_DIM, FRAME_STACKING, HOP_LENGTH, LOG_FLOOR, N_FFT, N_MELS, WIN_LENGTH,
    _hann, mel_filterbank, min_samples, num_feature_frames,
)
from model.numerics import get_numerics


def _window(device: torch.device) -> torch.Tensor:
    """The 400-sample Hann window centred in 512 samples, as ``torch.stft`` pads it."""
    left = (N_FFT - WIN_LENGTH) // 2
    return torch.nn.functional.pad(_hann(), (left, N_FFT - WIN_LENGTH - left)).to(device)


CPU_FRAMES_PER_SLICE = 1024   # frames per slice of the mel computation on the CPU (about 2 MB of frames)


def _mel(frames: torch.Tensor, window: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Mel power ``[F, 80]`` of the frames ``[F, 512]`` (views into the stream), windowed."""
    spec = torch.fft.rfft(frames * window, n=N_FFT)
    return (spec.real.square() + spec.imag.square()) @ filters


def log_mel_batch(waveforms: list[np.ndarray | torch.Tensor], *, numerics: str = "transformers",
                  device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """16 kHz mono float32 waveforms ``(N_i,)`` → their ``(T_i, 160)`` float32 features on ``device``,
    equal to ``log_mel(w, numerics=numerics)`` each (within float rounding: FFT sizes differ).

    Raises ``ValueError`` for a waveform that is not 1-D or shorter than ``min_samples(numerics)``.
    """
    profile = get_numerics(numerics)
    device = torch.device(device)
    if not waveforms:
        return []
    shortest = min_samples(profile)
    lengths = []
    for w in waveforms:
        if w.ndim != 1:
            raise ValueError(f"log_mel expects a 1-D mono waveform, got shape {tuple(w.shape)}")
        if w.shape[0] < shortest:
            raise ValueError(f"audio too short: {w.shape[0]} samples; at least {shortest} are needed")
        lengths.append(int(w.shape[0]))
    half = N_FFT // 2
    padded = []
    for w in waveforms:
        x = torch.as_tensor(w, dtype=torch.float32).to(device, non_blocking=True)
        x = torch.nn.functional.pad(x[None, None], (half, half), mode="reflect")[0, 0]
        extra = -x.shape[0] % HOP_LENGTH
        padded.append(torch.nn.functional.pad(x, (0, extra)) if extra else x)
    starts = np.concatenate([[0], np.cumsum([p.shape[0] for p in padded])[:-1]]) // HOP_LENGTH
    stream = torch.cat(padded)
    if stream.shape[0] < N_FFT:
        stream = torch.nn.functional.pad(stream, (0, N_FFT - stream.shape[0]))
    frames_all = stream.unfold(0, N_FFT, HOP_LENGTH)                      # [G, 512], views
    counts = [n // HOP_LENGTH + 1 for n in lengths]                       # mel frames of each
    keep = [num_feature_frames(n, numerics=profile) * FRAME_STACKING for n in lengths]
    # each utterance's kept frames in the stream's frame grid; a transformers odd count gets one zero
    # frame (the index of a zero row appended after the stream's G frames)
    zero_row = frames_all.shape[0]
    order = []
    for s, c, k in zip(starts, counts, keep):
        real = min(c, k)
        order.append(s + np.arange(real))
        if k > real:
            order.append(np.full(k - real, zero_row))
    with torch.inference_mode():
        window, filters = _window(device), mel_filterbank().to(device)
        # the mel power of every frame of the stream (the few between utterances included), then one
        # gather of the kept rows (80 wide, not 512). On a GPU one call over all frames; on the CPU
        # slices of CPU_FRAMES_PER_SLICE frames, so that a slice's frames, spectrum and power stay in
        # cache (one pass over a whole pack is memory-bound: 2.5x the CPU of per-utterance log_mel)
        step = zero_row if device.type != "cpu" else CPU_FRAMES_PER_SLICE
        mel = torch.cat([_mel(frames_all[i:i + step], window, filters) for i in range(0, zero_row, step)]
                        + [torch.zeros(1, N_MELS, device=device)])
        mel = mel[torch.as_tensor(np.concatenate(order), device=device)]  # [Σ keep, 80]
        logmel = torch.log10(mel.clamp_min(LOG_FLOOR))
        owner = torch.as_tensor(np.repeat(np.arange(len(keep)), keep), device=device)
        peak = torch.full((len(keep),), float("-inf"), device=device).scatter_reduce(
            0, owner, logmel.amax(dim=1), reduce="amax")
        logmel = torch.maximum(logmel, (peak - DYNAMIC_RANGE)[owner, None]) / 4.0 + 1.0
        out = logmel.reshape(-1, FEATURE_DIM)
    return list(out.split([k // FRAME_STACKING for k in keep]))
