"""Mistakes a new user made (issue 24), each as the user sees it: one ``error:`` line with the
fix and a non-zero exit, nothing left behind; a pool that cannot be scheduled refused before it
starts, a stall named while it lasts."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pyarrow as pa
import pytest

from pipeline.cluster import fit_resources, plural
from pipeline.config import ActorResources, ConfigError
from pipeline.sinks.summary import format_summary, summarize
from tests.conftest import TINY_AUDIO, call_main, free_port
from tests.reliability.conftest import MODEL, assert_one_line_error


def run_main(args: list[str], capsys) -> subprocess.CompletedProcess:
    """``python -m jobs.transcribe ARGS`` in this process; its exit code and streams."""
    from jobs.transcribe import main

    return call_main(main, args, capsys)


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """No AWS credentials anywhere botocore looks (environment, files, instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NLE_IO_RETRY_SECONDS", "0")


def test_s3_without_credentials_is_one_line_wherever_it_is_met(no_aws, tmp_path, capsys):
    out = tmp_path / "out"
    listing = run_main(["--input", "s3://bkt/corpus/", "--output", str(out), "--model", MODEL],
                       capsys)
    assert_one_line_error(listing, "--input 's3://bkt/corpus/' cannot be reached",
                          "NoCredentialsError", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                          "--s3-endpoint")
    output = run_main(["--input", str(TINY_AUDIO), "--output", "s3://bkt/out", "--model", MODEL],
                      capsys)
    assert_one_line_error(output, "--output s3://bkt/out cannot be reached", "NoCredentialsError",
                          "set AWS_ACCESS_KEY_ID")
    assert (listing.returncode, output.returncode) == (2, 2)
    assert not out.exists()


def test_s3_endpoint_that_does_not_answer_is_one_line(no_aws, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "newcomer")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "newcomer-secret")
    endpoint = f"http://127.0.0.1:{free_port()}"     # nothing listens there
    result = run_main(["--input", "s3://bkt/corpus/", "--output", str(tmp_path / "o"),
                       "--s3-endpoint", endpoint, "--model", MODEL], capsys)
    line = assert_one_line_error(result, "--input 's3://bkt/corpus/' cannot be reached",
                                 "EndpointConnectionError", "check --s3-endpoint URL")
    assert "--resume" not in line and result.returncode == 2


def test_output_inside_the_input_is_refused_at_once(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TINY_AUDIO / "a02.flac", data / "a02.flac")
    inside = run_main(["--input", str(data), "--output", str(data / "out"), "--model", MODEL],
                      capsys)
    assert_one_line_error(inside, f"--output {data / 'out'} lies inside --input {data}",
                          "pick an output outside the input")
    around = run_main(["--input", str(data), "--output", str(tmp_path), "--model", MODEL], capsys)
    assert_one_line_error(around, f"--input {data} lies inside --output {tmp_path}")
    assert (inside.returncode, around.returncode) == (2, 2)
    assert sorted(p.name for p in data.iterdir()) == ["a02.flac"]     # nothing written there
    # a manifest's folder may hold the output: the manifest lists what is read
    from pipeline.cluster import check_output_outside_inputs

    check_output_outside_inputs((str(data / "m.jsonl"),), str(data / "out"))
    check_output_outside_inputs(("s3://bkt/in",), "s3://bkt/input-out")
    with pytest.raises(ConfigError, match="lies inside"):
        check_output_outside_inputs(("s3://bkt/in/",), "s3://bkt/in/out")


def test_pool_fit_rules():
    pool = ActorResources(min_actors=2, max_actors=2, num_gpus=0, num_cpus=1)
    with pytest.raises(ConfigError, match=r"^the inference pool needs 2 actors × 1 CPU \+ 1 CPU for "
                       r"decoding = 3 CPU, but the Ray cluster has 2 CPU and no autoscaler to add "
                       r"nodes; lower --actors \(at most 1 fit beside decoding\) or --cpus-per-actor$"):
        fit_resources(pool, cluster={"CPU": 2}, ceiling=None)
    notes = []
    capped = fit_resources(ActorResources(1, 8, 0, 1), cluster={"CPU": 4}, ceiling=None,
                           say=notes.append)
    assert (capped.min_actors, capped.max_actors) == (1, 3)
    assert notes == ["note: inference pool capped to 1-3 actors (--actors 1,8 asked for up to 8): "
                     "the Ray cluster has 4 CPU and no autoscaler to add nodes, 0 GPU, and "
                     "decoding needs 1 CPU beside the actors"]
    # an autoscaler that can add GPU nodes: no refusal
    grown = fit_resources(ActorResources(1, 8, 1, 1), cluster={"CPU": 2}, ceiling={"CPU": 64, "GPU": 8})
    assert grown.max_actors == 8
    # default CPUs per actor on a 1-CPU machine: lowered so that decoding keeps its CPU
    lowered = fit_resources(ActorResources(1, 1, 0, 1), cluster={"CPU": 1}, ceiling=None,
                            explicit_cpus=False, say=notes.append)
    assert lowered.num_cpus == 0 and notes[-1].startswith("note: 1 CPU per inference actor")
    assert (plural(1, "utterance"), plural(6, "utterance")) == ("1 utterance", "6 utterances")


@pytest.mark.parametrize("flags, needles", [
    (["--actors", "4,4", "--cpus-per-actor", "1"],
     ("needs 4 actors × 1 CPU + 1 CPU for decoding = 5 CPU", "has 4 CPU and no autoscaler",
      "lower --actors (at most 3 fit beside decoding)")),
    (["--gpus-per-actor", "1"],
     ("needs 1 actor × 1 GPU", "has 0 GPU and no autoscaler", "pass --gpus-per-actor 0")),
])
def test_pool_that_cannot_be_scheduled_is_refused_before_it_starts(flags, needles, tmp_path,
                                                                   capsys):
    """On the session's local 4-CPU Ray without GPUs (no autoscaler): at once, not a hang."""
    started = time.monotonic()
    result = run_main(["--input", str(TINY_AUDIO), "--output", str(tmp_path / "out"),
                       "--model", MODEL, *flags], capsys)
    assert_one_line_error(result, *needles)
    assert result.returncode == 2 and time.monotonic() - started < 60
    assert not (tmp_path / "out").exists()


def test_a_stall_is_named_while_it_lasts(ray_session, monkeypatch, tmp_path):
    """Another holder takes 3 of the 4 CPUs after the check: the job waits; with a 12 s stall
    interval one ``note:`` names the waiting stage; once the CPUs are free the job completes."""
    import ray

    from pipeline import TranscribeConfig, run_transcribe

    monkeypatch.setenv("NLE_STALL_SECONDS", "12")   # above Ray's 5 s counter updates

    @ray.remote(num_cpus=3)
    class Holder:
        def ready(self) -> bool:
            return True

    holder = Holder.remote()
    ray.get(holder.ready.remote())
    lines: list[str] = []
    noted = threading.Event()

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("note: no progress"):
            noted.set()

    result: dict = {}
    config = TranscribeConfig(inputs=(str(TINY_AUDIO),), output=str(tmp_path / "out"),
                              model=MODEL, actors=(1, 1), cpus_per_actor=1)
    job = threading.Thread(target=lambda: result.update(run_transcribe(config, echo=echo)))
    job.start()
    try:
        assert noted.wait(240), lines
    finally:
        ray.kill(holder)
    job.join(300)
    notes = [line for line in lines if line.startswith("note: no progress")]
    assert len(notes) >= 1
    assert any(stage in notes[0] for stage in (
        "MapBatches(decode_batch) waits for 1 CPU per task",
        "MapBatches(Transcriber) waits for 1 CPU and 0 GPU per actor")), notes[0]
    assert "of 4 CPU" in notes[0] and "`ray status`" in notes[0]
    assert result["rows"] == 6 and result["errors"] == 0
    assert any(line.startswith("indexed 6 utterances (audio)") for line in lines), lines


def test_a_finished_output_resumed_reports_no_speed():
    table = pa.table({"id": ["a"], "duration_s": [2.0], "error": pa.nulls(1, pa.string()),
                      "wer_errors": pa.nulls(1, pa.int32()), "wer_words": pa.nulls(1, pa.int32()),
                      "model": ["m"]})
    summary = summarize(table, new_ids=pa.array([], pa.string()), wall_seconds=3.0, model="m",
                        settings={})
    assert summary["rows_inferred"] == 0 and summary["rtfx"] is None
    text = format_summary(summary, "out")
    assert "RTFx n/a (this run transcribed nothing new)" in text and "RTFx 0.0" not in text
