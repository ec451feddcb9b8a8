import numpy as np
import pytest

from model import log_mel, num_feature_frames


def test_features_match_reference(waveforms, expected, expected_arrays):
    for uid, wave in waveforms.items():
        feats = log_mel(wave)
        ref = expected_arrays[f"{uid}/features"]
        assert feats.dtype == np.float32
        assert feats.shape == ref.shape == (expected[uid]["num_feature_frames"], 160)
        np.testing.assert_allclose(feats, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n,frames", [(400, 2), (479, 2), (480, 2), (639, 2), (640, 3), (15217, 48), (112000, 351)])
def test_frame_count_formula(n, frames):
    assert num_feature_frames(n) == frames
    assert log_mel(np.zeros(n, dtype=np.float32) + 0.01).shape == (frames, 160)


def test_short_input_is_rejected():
    with pytest.raises(ValueError, match="too short"):
        log_mel(np.zeros(399, dtype=np.float32))


def test_stereo_is_rejected():
    with pytest.raises(ValueError, match="1-D"):
        log_mel(np.zeros((1000, 2), dtype=np.float32))


def test_dynamic_range_is_80_db():
    rng = np.random.default_rng(0)
    feats = log_mel(rng.standard_normal(16000).astype(np.float32))
    # max(logmel, max - 8) / 4 + 1: the span is at most 8 / 4 = 2.
    assert feats.max() - feats.min() <= 2.0 + 1e-6
