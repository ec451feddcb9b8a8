"""Log-mel front end (model-spec §2, §9.1), per utterance, without torchaudio.

One stacked frame is two 10 ms mel frames side by side, so the model sees 160 features every 20 ms.
The two numerics profiles (``model/numerics.py``) differ in how the mel frame count is made even:
``"transformers"`` (the PR) pads one zero frame when it is odd, ``"hub"`` (the checkpoint's own code)
keeps only the first ``2 * (N // 320)`` frames; the log-mel maximum is taken over what is kept.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .numerics import get_numerics

SAMPLE_RATE = 16000
N_FFT = 512
WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
N_MELS = 80
FRAME_STACKING = 2
FEATURE_DIM = N_MELS * FRAME_STACKING  # 160
MIN_SAMPLES = WIN_LENGTH  # transformers numerics: one 25 ms analysis window
HUB_MIN_SAMPLES = HOP_LENGTH * FRAME_STACKING  # hub numerics: N // 320 >= 1 stacked frame (20 ms)
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0  # in log10 units: 80 dB


def num_feature_frames(num_samples: int, *, numerics: str = "transformers") -> int:
    """Stacked frames the front end yields for ``num_samples`` samples: ``ceil((n // 160 + 1) / 2)``
    under ``"transformers"`` numerics, ``n // 320`` under ``"hub"`` (model-spec §9.1)."""
    if get_numerics(numerics).truncate_frames:
        return num_samples // (HOP_LENGTH * FRAME_STACKING)
    return -(-(num_samples // HOP_LENGTH + 1) // FRAME_STACKING)


def min_samples(numerics: str = "transformers") -> int:
    """The shortest input :func:`log_mel` accepts under ``numerics``: 400 samples (25 ms) for
    ``"transformers"``, 320 (20 ms, one stacked frame) for ``"hub"``."""
    return HUB_MIN_SAMPLES if get_numerics(numerics).truncate_frames else MIN_SAMPLES


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@functools.lru_cache(maxsize=None)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """HTK triangular filters without area normalisation, ``[n_fft // 2 + 1, n_mels]`` float32."""
    n_freqs = n_fft // 2 + 1
    bin_hz = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float32)
    mel_pts = torch.linspace(float(_hz_to_mel(0.0)), float(_hz_to_mel(sample_rate / 2)), n_mels + 2)
    hz_pts = torch.from_numpy(_mel_to_hz(mel_pts.numpy().astype(np.float64))).float()
    widths = hz_pts[1:] - hz_pts[:-1]  # (n_mels + 1,)
    slopes = hz_pts[None, :] - bin_hz[:, None]  # (n_freqs, n_mels + 2)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


@functools.lru_cache(maxsize=None)
def _hann(win_length: int = WIN_LENGTH) -> torch.Tensor:
    return torch.hann_window(win_length, periodic=True, dtype=torch.float32)


def log_mel(waveform: np.ndarray, *, numerics: str = "transformers") -> np.ndarray:
    """16 kHz mono float32 waveform ``(N,)`` -> stacked log-mel features ``(T, 160)`` float32.

    ``numerics="transformers"`` (the PR's extractor, §2): ``T = ceil((N // 160 + 1) / 2)``, an odd
    mel frame count padded with one zero frame before the log. ``numerics="hub"`` (the checkpoint's
    own extractor, §9.1): ``T = N // 320``, the mel cut to its first ``2T`` frames. Either way the
    80 dB floor is relative to the maximum over the frames kept. Raises ``ValueError`` for inputs that
    are not 1-D or shorter than :func:`min_samples` (400 samples, 25 ms; hub: 320, one frame).
    Use ``NarModel.features`` to get the features of the model's own profile.
    """
    profile = get_numerics(numerics)
    audio = np.asarray(waveform)
    if audio.ndim != 1:
        raise ValueError(f"log_mel expects a 1-D mono waveform, got shape {audio.shape}")
    shortest = min_samples(profile)
    if audio.shape[0] < shortest:
        raise ValueError(
            f"audio too short: {audio.shape[0]} samples; at least {shortest} ({shortest / SAMPLE_RATE * 1000:.0f} ms) "
            f"are needed" + (" under hub numerics (N // 320 frames)" if profile.truncate_frames else "")
        )
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    with torch.inference_mode():
        spec = torch.stft(
            x, N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window=_hann(),
            center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
        )  # (257, F)
        power = spec.real.square() + spec.imag.square()
        mel = power.transpose(0, 1) @ mel_filterbank()  # (F, 80), F = N // 160 + 1
        if profile.truncate_frames:
            mel = mel[: num_feature_frames(audio.shape[0], numerics=profile) * FRAME_STACKING]
        elif mel.shape[0] % FRAME_STACKING:
            mel = torch.nn.functional.pad(mel, (0, 0, 0, FRAME_STACKING - mel.shape[0] % FRAME_STACKING))
        logmel = torch.log10(mel.clamp_min(LOG_FLOOR))
        logmel = torch.maximum(logmel, logmel.max() - DYNAMIC_RANGE) / 4.0 + 1.0
        out = logmel.reshape(-1, FEATURE_DIM)  # (T, 160): [frame 2k | frame 2k+1]
    return out.numpy()


def duration_to_frames(seconds: float, *, numerics: str = "transformers") -> int:
    """Stacked frames for ``seconds`` of 16 kHz audio (for budgeting before decoding)."""
    return num_feature_frames(int(math.floor(seconds * SAMPLE_RATE)), numerics=numerics)
