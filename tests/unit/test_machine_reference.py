"""The benchmark's machine reference: the fixed work's samples, their median and spread, and the
line ``--compare`` prints from two runs' references."""

import numpy as np
import pytest

from bench.machine import ReferenceWork, compare_reference


def test_samples_are_cpu_times_of_the_fixed_work_with_their_labels():
    ref = ReferenceWork(passes=3)
    values = [ref.sample(label) for label in ("start", "middle", "end")]
    fig = ref.figures()
    assert [s["at"] for s in fig["samples"]] == ["start", "middle", "end"]
    assert [s["cpu_seconds"] for s in fig["samples"]] == values
    # decoding and featurising 10 s of FLAC plus the loop: milliseconds, not microseconds or seconds
    assert all(0.002 < v < 2.0 for v in values)
    assert fig["cpu_seconds"] == pytest.approx(float(np.median(values)))
    assert fig["spread"] == pytest.approx((max(values) - min(values)) / np.median(values))


def test_the_samples_do_not_change_torch_threads():
    import torch

    before = torch.get_num_threads()
    ReferenceWork(passes=1).sample("x")
    assert torch.get_num_threads() == before


def test_no_samples_give_no_figure():
    assert ReferenceWork().figures() == {"cpu_seconds": None, "samples": [], "spread": None}


def _run(cpu_seconds, spread=0.05):
    return {"machine_reference": {"cpu_seconds": cpu_seconds, "samples": [], "spread": spread}}


def test_compare_says_when_the_machine_held_its_speed():
    [line] = compare_reference(_run(0.020), _run(0.021))
    assert "20.0 and 21.0 CPU ms" in line
    assert "(4.9% apart; 5%, 5% inside each run)" in line
    assert line.endswith("the machine held its speed between the runs")


def test_compare_says_when_the_machine_changed_speed():
    [line] = compare_reference(_run(0.016, None), _run(0.032))
    assert "(66.7% apart; -, 5% inside each run)" in line
    assert "the machine itself changed speed between the runs" in line


def test_compare_prints_nothing_for_runs_without_a_reference():
    assert compare_reference({}, _run(0.02)) == []
    assert compare_reference(_run(None), _run(0.02)) == []
