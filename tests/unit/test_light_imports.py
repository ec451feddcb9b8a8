"""The light stages' Ray workers do not import PyTorch or the model.

Every Ray worker that runs a stage imports the stage's module (and so the ``pipeline`` package) to
unpickle it. Ray starts and ends workers beyond a node's CPU count as 0-CPU tasks (fetch, score,
write) come and go; when ``pipeline/__init__.py`` imported its exports eagerly, each such worker
spent seconds of CPU importing torch before its first row (py-spy: 73 % of the score-and-write
worker's samples). A fresh interpreter is the only honest place to check what an import pulls in.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LIGHT = ("pipeline.stages.fetch", "pipeline.stages.score", "pipeline.sinks.atomic_fs", "pipeline.config",
         "pipeline.cluster")


def _modules_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return set(out.stdout.split())


def test_light_stage_modules_import_neither_torch_nor_the_model():
    loaded = _modules_after("\n".join(f"import {m}" for m in LIGHT)
                            + "\nfrom pipeline.stages.score import score_batch"
                            + "\nfrom pipeline.stages.fetch import prefetch_parquet")
    assert set(LIGHT) <= loaded
    assert "torch" not in loaded and "model" not in loaded
    assert "pipeline.stages.inference" not in loaded and "pipeline.run" not in loaded


def test_package_exports_still_resolve_and_are_listed():
    loaded = _modules_after("import pipeline\nassert 'torch' not in sys.modules\n"
                            "from pipeline import read_corpus, run_transcribe, ConfigError, make_normalizer\n"
                            "assert pipeline.read_corpus is read_corpus\n"
                            "assert {'read_corpus', 'run_transcribe', 'write_results'} <= set(dir(pipeline))\n"
                            "assert set(pipeline.__all__) <= set(dir(pipeline))\n"
                            "try:\n    pipeline.no_such_name\nexcept AttributeError as e:\n"
                            "    assert 'no_such_name' in str(e)\nelse:\n    raise SystemExit('no AttributeError')")
    assert "pipeline.data" in loaded and "pipeline.run" in loaded
