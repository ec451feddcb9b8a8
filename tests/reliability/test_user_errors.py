"""User mistakes and unsafe checkpoints: one ``error:`` line naming the problem and the fix, a
non-zero exit, no traceback; and nothing from a checkpoint folder is ever executed."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess

import pytest

from pipeline import TranscribeConfig, run_transcribe
from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL
from tests.reliability.conftest import JOB, MODEL, assert_one_line_error, id_counts, job_env


class RunsCodeWhenUnpickled:
    """Unpickling this creates ``marker`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile_checkpoint(folder, marker, *, keep_safetensors: bool):
    """The tiny checkpoint with remote code in ``auto_map`` and a code-running pickle; without
    ``keep_safetensors`` the pickle is its only weights."""
    shutil.copytree(TINY_MODEL, folder, ignore=shutil.ignore_patterns("audio"))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w')\nclass EvilModel: pass\n")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(RunsCodeWhenUnpickled(marker)))
    if not keep_safetensors:
        (folder / "model.safetensors").unlink()
    return folder


def mistakes(tmp_path) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """name → (CLI arguments, words the error line must hold)."""
    good_in, out = str(TINY_AUDIO), str(tmp_path / "out")
    (tmp_path / "empty").mkdir()
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "notes.xyz").write_text("?")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "not_a_model").mkdir()
    (tmp_path / "not_a_model" / "weights.txt").write_text("?")
    other = tmp_path / "whisper"
    shutil.copytree(TINY_MODEL, other, ignore=shutil.ignore_patterns("audio"))
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "whisper"}))
    pickled = hostile_checkpoint(tmp_path / "pickled", tmp_path / "PWNED", keep_safetensors=False)
    model = ["--model", MODEL]
    return {
        "missing input": (["--input", str(tmp_path / "nope"), "--output", out, *model],
                          ("does not exist", "check the path")),
        "empty input": (["--input", str(tmp_path / "empty"), "--output", out, *model],
                        ("is empty", "point --input")),
        "unwritable output": (["--input", good_in, "--output", str(tmp_path / "a_file" / "o"),
                               *model], ("not writable", "pick a location")),
        "unknown format flag": (["--input", good_in, "--output", out, "--format", "ogg", *model],
                                ("invalid choice", "--help")),
        "unknown format files": (["--input", str(tmp_path / "odd"), "--output", out, *model],
                                 ("cannot tell the format", "--format")),
        "model not a checkpoint": (["--input", good_in, "--output", out, "--model",
                                    str(tmp_path / "not_a_model")],
                                   ("not a model checkpoint", "config.json")),
        "model is a file": (["--input", good_in, "--output", out, "--model",
                             str(TINY_MODEL / "config.json")], ("is a file", "folder")),
        "unknown model_type": (["--input", good_in, "--output", out, "--model", str(other)],
                               ("'model_type' = 'whisper'", "pass a checkpoint")),
        "mistyped model folder": (["--input", good_in, "--output", out, "--model",
                                   str(tmp_path / "granite-nar-tny")],
                                  ("no such folder", "check the path")),
        "abbreviated flag": (["--input", good_in, "--output", out, "--editing-step", "2", *model],
                             ("unrecognized argument --editing-step",
                              "did you mean --editing-steps?")),
        "pickle-only weights": (["--input", good_in, "--output", out, "--model", str(pickled)],
                                ("pickle", "refused", "safetensors")),
    }


MISTAKES = ["missing input", "empty input", "unwritable output", "unknown format flag",
            "unknown format files", "model not a checkpoint", "model is a file",
            "unknown model_type", "mistyped model folder", "abbreviated flag", "pickle-only weights"]


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_is_one_line_with_the_fix(name, tmp_path, capsys):
    """In process, through ``main(argv)`` as ``python -m jobs.transcribe`` calls it."""
    from jobs.transcribe import main

    cases = mistakes(tmp_path)
    assert sorted(cases) == sorted(MISTAKES)
    args, needles = cases[name]
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as e:          # argparse's own exit, as the command line sees it
        code = e.code
    captured = capsys.readouterr()
    assert_one_line_error(subprocess.CompletedProcess(args, code, captured.out, captured.err),
                          *needles)
    assert code == 2, (name, code)
    # (Ray Data's progress lines may share stderr here: the session's Ray was not started by the
    # job, so the job's quiet console settings do not apply; the subprocess case checks them.)
    assert not (tmp_path / "PWNED").exists()     # the pickle was refused, never opened
    assert not (tmp_path / "out").exists()   # no run left an empty output folder behind


def test_a_mistake_from_the_command_line_is_one_line(tmp_path):
    """The same path as a user's shell takes it: a separate process, exit status 2."""
    args, needles = mistakes(tmp_path)["missing input"]
    result = subprocess.run([*JOB, *args], cwd=REPO, env=job_env(), text=True,
                            capture_output=True, timeout=180)
    assert_one_line_error(result, *needles)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"error: --input '{tmp_path / 'nope'}' does not exist (or is not readable); check the "
        "path (for s3:// also --s3-endpoint and the AWS credentials)"]


def test_checkpoint_code_and_pickles_are_never_executed(ray_session, tmp_path):
    marker = tmp_path / "PWNED"
    folder = hostile_checkpoint(tmp_path / "ck", marker, keep_safetensors=True)
    out = tmp_path / "out"
    summary = run_transcribe(TranscribeConfig(inputs=(str(TINY_AUDIO),), output=str(out),
                                              model=str(folder), actors=(1, 1)))
    assert summary["errors"] == 0 and len(id_counts(out)) == 6   # safetensors used, job fine
    assert not marker.exists(), "code from the checkpoint folder ran"


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_bad_retry_budget_is_a_clear_error(value):
    from pipeline.config import ConfigError
    from pipeline.storage import Storage

    with pytest.raises(ConfigError, match="NLE_IO_RETRY_SECONDS"):
        Storage.from_env(None, {"NLE_IO_RETRY_SECONDS": value})
