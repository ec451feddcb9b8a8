import numpy as np
import pytest

from pipeline.stages.segment import joint_confidence, join_texts, plan_segments

SR = 16000


def tone(seconds, amp=0.3, f=220.0):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_short_input_is_one_segment():
    assert plan_segments(tone(3.0), 40.0) == [(0, 48000)]


def test_cuts_land_in_the_silences():
    gap = np.zeros(int(0.3 * SR), dtype=np.float32)
    parts = [tone(4.0), gap, tone(3.0), gap, tone(4.5)]
    wave = np.concatenate(parts)
    segs = plan_segments(wave, 5.0)
    assert segs[0][0] == 0 and segs[-1][1] == wave.size
    assert all(a[1] == b[0] for a, b in zip(segs, segs[1:]))  # contiguous, nothing lost or repeated
    assert all(e - s <= 5.0 * SR for s, e in segs)
    silence_1 = (4.0 * SR, 4.3 * SR)
    silence_2 = (7.3 * SR, 7.6 * SR)
    assert len(segs) == 3
    assert silence_1[0] <= segs[0][1] <= silence_1[1]
    assert silence_2[0] <= segs[1][1] <= silence_2[1]


def test_deterministic_and_bounded_without_silence():
    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(int(95 * SR))).astype(np.float32)
    a, b = plan_segments(wave, 40.0), plan_segments(wave.copy(), 40.0)
    assert a == b and len(a) == 3
    assert all(1.0 * SR <= e - s <= 40.0 * SR for s, e in a)


def test_no_tiny_last_segment():
    wave = tone(10.05)
    segs = plan_segments(wave, 10.0)
    assert all(e - s >= SR for s, e in segs)


def test_joining():
    assert join_texts([" hello there", "", " world "]) == "hello there world"
    assert joint_confidence([0.5, 0.5], [3, 5]) == pytest.approx(0.5)
    assert joint_confidence([1.0, 0.25], [1, 1]) == pytest.approx(0.5)
