"""The benchmark's machine reference: the fixed work's samples, their median and spread, and the
line ``--compare`` prints from two runs' references."""

import time

import numpy as np
import pytest

from bench.machine import OTHERS_LIMIT_CORES, ReferenceWork, compare_reference, other_processes_cores


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
    assert ReferenceWork().figures() == {"cpu_seconds": None, "samples": [], "spread": None,
                                         "other_processes_cores": None, "other_processes_cores_max": None}


def _busy_loop(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_other_processes_cpu_is_seen_and_the_benchmarks_own_children_are_not(tmp_path):
    """A process that is not the benchmark's, spinning one core, shows as about one core; the same
    spin in the benchmark's own child process (as a local Ray's workers are) does not."""
    import subprocess
    import sys

    spin = [sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"]
    # not ours: started through a shell that exits at once, so the spinner is re-parented away
    before = other_processes_cores(1.0)     # whatever else this machine runs meanwhile
    subprocess.run(["sh", "-c", f"{' '.join(spin[:2])} '{spin[2]}' > /dev/null 2>&1 &"], check=True)
    time.sleep(0.3)
    other = other_processes_cores(1.0)
    time.sleep(2.0)                          # the stranger is done
    child = subprocess.Popen(spin)
    try:
        time.sleep(0.3)
        own_child = other_processes_cores(1.0)
    finally:
        child.wait()
    assert other - before > 0.6, (before, other)
    assert own_child - before < 0.4, (before, own_child)


def test_a_sample_says_when_other_processes_share_the_machine():
    """Above OTHERS_LIMIT_CORES the sample prints one line; figures keep every sample's value."""
    import subprocess
    import sys

    lines = []
    ref = ReferenceWork(passes=1, echo=lines.append)
    ref.sample("quiet")
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    subprocess.run(["sh", "-c", f"{sys.executable} -c '{spin}' > /dev/null 2>&1 &"], check=True)
    time.sleep(0.3)
    ref.sample("busy")
    fig = ref.figures()
    assert [s["at"] for s in fig["samples"]] == ["quiet", "busy"]
    assert fig["samples"][1]["other_processes_cores"] > 0.6
    assert fig["other_processes_cores_max"] == fig["samples"][1]["other_processes_cores"]
    # one line per sample that saw more than the limit: the busy one, and the quiet one only if
    # something else (a CI run) used this machine then
    quiet_seen = fig["samples"][0]["other_processes_cores"] > OTHERS_LIMIT_CORES
    assert len(lines) == 1 + quiet_seen and lines[-1].startswith("  machine: other processes are using ")
    assert lines[-1].endswith("cores of this machine (busy): the figures are measured beside them")
    time.sleep(2.5)


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


def test_compare_prints_what_the_vm_host_stole_in_each_run():
    a = {**_run(0.020), "steal_share_in_pipeline_runs": 0.295, "standin_runs_discarded": [{}, {}]}
    b = {**_run(0.020), "steal_share_in_pipeline_runs": 0.062}
    held, stolen = compare_reference(a, b)
    assert held.endswith("the machine held its speed between the runs")
    assert "stole 29.5% and 6.2% of its time in the pipeline runs" in stolen
    assert "runs over 10 %, 5 % at R = inf, run again: 2 and 0" in stolen


def test_compare_prints_the_other_processes_cores_of_each_run():
    def run(most):
        return {"machine_reference": {"cpu_seconds": 0.02, "spread": 0.05, "other_processes_cores_max": most}}

    [_, quiet] = compare_reference(run(0.02), run(0.05))
    assert quiet == ("machine: other processes used at most 0.02 and 0.05 cores while each run paused: "
                     "neither run shared this machine's cores")
    [_, shared] = compare_reference(run(0.02), run(1.4))
    assert "at most 0.02 and 1.40 cores" in shared and "a run shared this machine's cores" in shared


def test_pipeline_runs_over_the_steal_limit_are_run_again(tmp_path, monkeypatch):
    """Rerun rule only (the runs themselves are stubbed; tests/jobs/test_benchmark.py runs the real
    pipeline): a run whose steady window lost more than 10 % of the machine's time to the VM's host
    is run again, at most --steal-reruns times per benchmark, and the runs left out are kept."""
    import bench.pipeline_run
    import bench.standin_run as sr
    from types import SimpleNamespace

    steals = iter([0.30, 0.05, 0.02, 0.11, 0.12, 0.04] + [0.5] * 20)
    made = []

    def fake_run(tmp, out, checkpoint, cfg, audio, name):
        made.append(name)
        return {"steal_share": next(steals), "steady_rtfx": 700.0, "rtfx": 500.0}

    monkeypatch.setattr(sr, "_standin_run", fake_run)
    monkeypatch.setattr(bench.pipeline_run, "_run_pipeline", lambda *a, **k: (1.0, {}))
    cfg = SimpleNamespace(simulate_rtfx=(1000.0, 4000.0), standin_repeats=3, scale_factor=1, steal_reruns=6)
    discarded: list = []
    runs = sr._pipeline_runs(tmp_path, tmp_path, cfg, 1.0, lambda *_: None, None, discarded)
    assert {k: len(v) for k, v in runs.items()} == {"inf": 3, "1000": 3, "4000": 3}
    assert len(made) == 9 + 6
    assert [d["steal_share"] for d in discarded] == [0.30, 0.11, 0.12] + [0.5] * (6 - 3)
    assert (discarded[0]["simulated_rtfx"], discarded[0]["repeat"], discarded[0]["rtfx"]) == ("inf", 1, 500.0)
    assert runs["inf"][0]["steal_share"] == 0.05 and runs["1000"][0]["steal_share"] == 0.02
    # once the reruns are spent, runs are kept whatever the host took
    assert all(r["steal_share"] == 0.5 for r in runs["4000"][1:] + runs["inf"][2:])


def test_at_r_inf_a_lower_steal_share_is_run_again(tmp_path, monkeypatch):
    """At R = inf every core is busy: a run that lost 7 % to the host is run again there, not at R = 1000."""
    import bench.pipeline_run
    import bench.standin_run as sr
    from types import SimpleNamespace

    steals = iter([0.07, 0.01, 0.07])
    monkeypatch.setattr(sr, "_standin_run", lambda *a: {"steal_share": next(steals), "steady_rtfx": 1.0, "rtfx": 1.0})
    monkeypatch.setattr(bench.pipeline_run, "_run_pipeline", lambda *a, **k: (1.0, {}))
    cfg = SimpleNamespace(simulate_rtfx=(1000.0,), standin_repeats=1, scale_factor=1, steal_reruns=6)
    discarded: list = []
    runs = sr._pipeline_runs(tmp_path, tmp_path, cfg, 1.0, lambda *_: None, None, discarded)
    assert [d["simulated_rtfx"] for d in discarded] == ["inf"]
    assert runs["inf"][0]["steal_share"] == 0.01 and runs["1000"][0]["steal_share"] == 0.07
