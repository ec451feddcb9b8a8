"""User mistakes given to ``jobs.evaluate``, ``jobs.pseudo_label`` and ``jobs.benchmark``: each is
exactly one ``error:`` line on stderr, no traceback, and the documented exit code, run in process
through ``main(argv)`` (the subprocess path is covered once, in tests/reliability/test_user_errors.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import TINY_AUDIO, TINY_MODEL, call_main

MODEL = ["--model", str(TINY_MODEL)]


def run_main(main, argv: list[str], capsys) -> tuple[int, list[str], str]:
    """(exit code, the non-blank stderr lines, stdout) of ``main(argv)``; argparse's exit counts."""
    result = call_main(main, argv, capsys)
    return result.returncode, [line for line in result.stderr.splitlines() if line.strip()], \
        result.stdout


def evaluate_cases(tmp_path) -> dict[str, tuple[list[str], int, str]]:
    out = str(tmp_path / "eval")
    return {
        "no dataset": (["--output", out, *MODEL], 2,
                       "error: give at least one --dataset NAME=URI or --datasets FILE "
                       "(or --datasets leaderboard)"),
        "repeated name": (["--dataset", f"a={TINY_AUDIO}", "--dataset", f"a={TINY_AUDIO}",
                           "--output", out, *MODEL], 2,
                          "error: dataset names must be unique across --dataset and --datasets, "
                          "got ['a', 'a']"),
        "root without file": (["--dataset", f"a={TINY_AUDIO}", "--datasets-root", "/x",
                               "--output", out, *MODEL], 2,
                              "error: --datasets-root needs --datasets (it fills {root} in that "
                              "file)"),
    }


@pytest.mark.parametrize("case", ["no dataset", "repeated name", "root without file"])
def test_evaluate_mistakes_are_one_line(case, tmp_path, capsys):
    from jobs.evaluate import main

    argv, want_code, want_line = evaluate_cases(tmp_path)[case]
    code, lines, _ = run_main(main, argv, capsys)
    assert (code, lines) == (want_code, [want_line])
    assert not (tmp_path / "eval").exists()


def test_evaluate_missing_dataset_path_is_one_line(ray_session, tmp_path, capsys):
    from jobs.evaluate import main

    missing = tmp_path / "nope"
    code, lines, _ = run_main(main, ["--dataset", f"gone={missing}", "--output",
                                     str(tmp_path / "eval"), *MODEL], capsys)
    # A dataset that cannot be read fails that dataset; no dataset left: the job fails (exit 1).
    assert (code, lines) == (1, [f"error: dataset gone: '{missing}' does not exist (or is not "
                                 "readable); check the path (for s3:// also --s3-endpoint and the "
                                 "AWS credentials)"])


def test_pseudo_label_missing_input_is_one_line(ray_session, tmp_path, capsys):
    from jobs.pseudo_label import main

    missing = tmp_path / "nope"
    code, lines, _ = run_main(main, ["--input", str(missing), "--output", str(tmp_path / "pl"),
                                     *MODEL], capsys)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert str(missing) in lines[0] and "does not exist" in lines[0], lines
    assert not (tmp_path / "pl").exists()


def test_pseudo_label_unknown_flag_names_the_real_one(capsys):
    from jobs.pseudo_label import main

    code, lines, _ = run_main(main, ["--input", "x", "--output", "y", "--max-wr", "0.1"], capsys)
    assert (code, lines) == (2, ["error: unrecognized argument --max-wr (did you mean --max-wer?); "
                                 "see python -m jobs.pseudo_label --help"])


@pytest.mark.parametrize("argv, says", [(["--count", "1"], "--count: must be a whole number >= 2, got '1'"),
                                        (["--scale-factor", "1"], "--scale-factor: must be a whole number >= 2, got '1'"),
                                        (["--padded-batch-size", "0"],
                                         "--padded-batch-size: must be a whole number >= 1, got '0'")])
def test_benchmark_bad_sizes_are_one_line(argv, says, capsys):
    from jobs.benchmark import main

    code, lines, out = run_main(main, ["--size", "tiny", "--device", "cpu", *argv], capsys)
    assert (code, lines, out) == (2, [f"error: argument {says}; see python -m jobs.benchmark --help"], "")


def test_benchmark_unknown_device_choice_is_one_line(capsys):
    from jobs.benchmark import main

    code, lines, _ = run_main(main, ["--size", "tiny", "--device", "tpu"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: argument --device: invalid choice: 'tpu'"), lines
