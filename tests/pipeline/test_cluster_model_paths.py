"""``--model``: a local folder is made absolute on the driver (actors run elsewhere) and shown as
given; a mistyped folder says "check the path"; only a hub id that cannot be fetched gets the
random test checkpoint's command."""

from __future__ import annotations

import pytest

from jobs.transcribe import main
from pipeline.config import ConfigError
from pipeline.model_ref import ModelUnavailable, looks_like_path, resolve_model
from tests.conftest import REPO, TINY_AUDIO


def test_local_folder_is_absolute_and_keeps_its_label(monkeypatch):
    monkeypatch.chdir(REPO)
    spec = resolve_model("tests/fixtures/granite-nar-tiny")
    assert spec.name_or_path == str(REPO / "tests" / "fixtures" / "granite-nar-tiny")
    assert (spec.label, spec.shown) == ("tests/fixtures/granite-nar-tiny",
                                        "tests/fixtures/granite-nar-tiny")


@pytest.mark.parametrize("name", ["tests/fixtures/granite-nar-tny", "./granite", "/opt/models/x",
                                  "~/models/granite", "tests/granite", "granite-nar-tiny/",
                                  "granite-nar-tiny"])
def test_mistyped_folder_is_a_path_mistake(name, monkeypatch):
    monkeypatch.chdir(REPO)
    assert looks_like_path(name)
    with pytest.raises(ConfigError) as e:
        resolve_model(name)
    assert str(e.value).startswith(f"--model {name}: no such folder; check the path")


def test_hub_id_offline_gets_the_test_model_hint(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert not looks_like_path("ibm-granite/not-cached")
    with pytest.raises(ModelUnavailable, match="cannot be fetched"):
        resolve_model("ibm-granite/not-cached")


def test_cli_mistyped_model_is_one_line_without_the_test_model(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    code = main(["--input", str(TINY_AUDIO), "--output", str(tmp_path / "out"),
                 "--model", "tests/fixtures/granite-nar-tny"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(
        "error: --model tests/fixtures/granite-nar-tny: no such folder; check the path")
    assert "python -m" not in err[0]
    assert not (tmp_path / "out").exists()
