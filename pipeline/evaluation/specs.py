"""Evaluation datasets: the ``--dataset``/``--datasets`` specs, the shipped leaderboard file, and
reading the small tables of chunked sets (chunk rows and their parents' references).

A dataset file is YAML (or JSON)::

    root: hf://datasets                 # {root} in uri / parents_uri / audio_root
    datasets:
      - {name: ls_clean, uri: "{root}/hf-audio/open-asr-leaderboard/librispeech/test.clean-*.parquet"}
      - name: earnings22_chunked        # chunk rows: file_name, parent_id, chunk_index
        uri: "{root}/ArtificialAnalysis/Earnings22-Cleaned-AA-chunked/metadata.csv"
        parents_uri: "{root}/ArtificialAnalysis/Earnings22-Cleaned-AA/test.parquet"

``--datasets leaderboard`` (a bare name) reads ``pipeline/evaluation/datasets/leaderboard.yaml``
(also ``leaderboard-multilingual``, ``leaderboard-longform``); ``--datasets-root`` (or
``$NLE_DATASETS_ROOT``) replaces its ``root`` to run on a local copy. A file's top-level ``track:``
is the default ``track`` of its entries; each entry may give ``language`` (ISO 639-1, default
``en``), ``track`` and ``group`` (sets averaged together first, as the long-form track's CORAAL).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, fields
from importlib import resources

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from pipeline.config import ConfigError
from pipeline.storage import Storage, join_uri, parent_uri

# The leaderboard's ``get_text``: the first of these columns a dataset has is its reference.
TEXT_COLUMNS = ("text", "sentence", "normalized_text", "transcript", "transcription")
ROOT_ENV = "NLE_DATASETS_ROOT"
TABLE_EXTENSIONS = ("parquet", "csv", "tsv", "jsonl", "json")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
TRACKS = ("english", "multilingual", "longform")


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluation set. ``text_column=None`` tries :data:`TEXT_COLUMNS` in order.

    Chunked sets (``parents_uri`` given): ``uri`` is the chunk table (CSV, JSONL or Parquet) whose
    rows name a chunk's audio (``file_column``, relative to ``audio_root``, default the table's
    folder), its parent (``parent_column``) and its position (``chunk_column``); ``parents_uri``
    is the table of parent references (``parents_id_column``, ``parents_text_column``).
    """

    name: str
    uri: str
    format: str = "auto"
    text_column: str | None = None
    id_column: str = "id"
    audio_column: str | None = None
    parents_uri: str | None = None
    parent_column: str = "parent_id"
    chunk_column: str = "chunk_index"
    file_column: str = "file_name"
    audio_root: str | None = None
    parents_id_column: str = "id"
    parents_text_column: str | None = None
    hub: str | None = None          # informational: hub repo, config and split of the set
    config: str | None = None
    split: str | None = None
    language: str = "en"            # ISO 639-1: picks the normaliser and the scoring rules
    track: str | None = None        # english | multilingual | longform; None: the user's own sets
    group: str | None = None        # averaged together first in its track (long-form: coraal)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"dataset name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if not isinstance(self.language, str) or not _LANGUAGE.match(self.language):
            raise ConfigError(f"dataset {self.name}: language {self.language!r} must be an ISO 639-1 "
                              "code such as en, de, fr, es, pt")
        if self.track is not None and self.track not in TRACKS:
            raise ConfigError(f"dataset {self.name}: track {self.track!r} is not one of {', '.join(TRACKS)}")

    @property
    def chunked(self) -> bool:
        return self.parents_uri is not None


def parse_dataset_arg(text: str, language: str = "en") -> DatasetSpec:
    """``NAME=URI`` from ``--dataset``, in ``language`` (``--language``)."""
    name, sep, uri = text.partition("=")
    if not sep or not name.strip() or not uri.strip():
        raise ConfigError(f"--dataset expects NAME=URI, got {text!r}")
    return DatasetSpec(name=name.strip(), uri=uri.strip(), language=language)


def shipped_dataset_file(name: str) -> str | None:
    """Path of the dataset file shipped as ``pipeline/evaluation/datasets/<name>.yaml``, if any."""
    path = resources.files("pipeline.evaluation").joinpath("datasets", f"{name}.yaml")
    return str(path) if path.is_file() else None


def load_dataset_file(path: str, root: str | None = None) -> list[DatasetSpec]:
    """Specs of a dataset file (a path, or a bare name of a shipped file such as ``leaderboard``).

    ``root`` (else ``$NLE_DATASETS_ROOT``, else the file's ``root:``) fills ``{root}``.
    Raises :class:`ConfigError` naming ``--datasets`` for anything the user can fix.
    """
    import yaml  # JSON is a subset of YAML

    if not os.path.exists(path) and os.sep not in path and shipped_dataset_file(path):
        path = shipped_dataset_file(path)
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"--datasets {path}: cannot read it ({e}); give a YAML file or the "
                          f"name of a shipped one (leaderboard)") from e
    entries = raw.get("datasets") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"--datasets {path}: expected a list of datasets under 'datasets:'")
    base = (root or os.environ.get(ROOT_ENV) or (raw.get("root") if isinstance(raw, dict) else None)
            or "").rstrip("/")
    known = {f.name for f in fields(DatasetSpec)}
    track = raw.get("track") if isinstance(raw, dict) else None
    specs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry or "uri" not in entry:
            raise ConfigError(f"--datasets {path}: entry {i} needs 'name' and 'uri'")
        unknown = set(entry) - known
        if unknown:
            raise ConfigError(f"--datasets {path}: entry {entry['name']!r} has unknown keys "
                              f"{sorted(unknown)} (known: {', '.join(sorted(known))})")
        values = {k: (v.replace("{root}", base) if isinstance(v, str) else v) for k, v in entry.items()}
        values.setdefault("track", track)
        specs.append(DatasetSpec(**values))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--datasets {path}: dataset names must be unique, got {names}")
    return specs


def _first_file(storage: Storage, uri: str) -> str | None:
    fs, path = storage.filesystem(uri)
    if any(ch in path for ch in "*?["):
        found = sorted(fs.glob(path))
    elif fs.isdir(path):
        found = sorted(fs.find(path))
    else:
        found = [path] if fs.exists(path) else []
    wanted = [p for p in found if p.rsplit(".", 1)[-1].lower() in TABLE_EXTENSIONS]
    if not wanted:
        return None
    return fs.unstrip_protocol(wanted[0]) if "://" in uri else wanted[0]


def table_columns(storage: Storage, uri: str, fmt: str = "auto") -> list[str]:
    """Column names of the set at ``uri`` as ``jobs.transcribe`` reads it (the same listing and
    parsers: ``pipeline.sources.columns``); ``[]`` for a folder of audio files, tars, LibriSpeech
    or Kaldi, and for an input transcribe's listing refuses (the run then says why)."""
    from pipeline.sources.columns import input_columns

    try:
        return input_columns(storage, uri, fmt)
    except ConfigError:
        return []         # the run that follows stops with transcribe's own words for it


def pick_text_column(columns: list[str], given: str | None, where: str) -> str:
    """``given`` if set, else the first of :data:`TEXT_COLUMNS` present in ``columns``."""
    if given is not None:
        return given
    for name in TEXT_COLUMNS:
        if name in columns:
            return name
    raise ConfigError(f"{where} has none of the text columns {', '.join(TEXT_COLUMNS)} "
                      f"(columns: {', '.join(columns) or 'none'}); set text_column in the --datasets file")


def read_table(storage: Storage, uri: str, string_columns: tuple[str, ...]) -> pa.Table:
    """A small table (CSV/TSV, JSONL or Parquet; a folder or glob of them) with ``string_columns``
    read as strings, never type-inferred (an id ``0001`` stays ``0001``)."""
    fs, path = storage.filesystem(uri)
    if any(ch in path for ch in "*?["):
        files = sorted(fs.glob(path))
    elif fs.isdir(path):
        files = sorted(p for p in fs.find(path) if p.rsplit(".", 1)[-1].lower() in TABLE_EXTENSIONS)
    else:
        files = [path]
    if not files:
        raise ConfigError(f"--datasets: no table found at {uri}")
    tables = []
    for file in files:
        ext = file.rsplit(".", 1)[-1].lower()
        try:
            with fs.open(file, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ConfigError(storage.redact(f"--datasets: cannot read {file}: {e}")) from e
        tables.append(_parse_table(data, ext, string_columns, file))
    return pa.concat_tables(tables, promote_options="permissive")


def _parse_table(data: bytes, ext: str, string_columns: tuple[str, ...], where: str) -> pa.Table:
    types = {c: pa.string() for c in string_columns}
    try:
        if ext in ("csv", "tsv"):
            table = pacsv.read_csv(io.BytesIO(data),
                                   parse_options=pacsv.ParseOptions(delimiter="\t" if ext == "tsv" else ","),
                                   convert_options=pacsv.ConvertOptions(column_types=types))
        elif ext in ("jsonl", "json"):
            table = pajson.read_json(io.BytesIO(data))
        elif ext == "parquet":
            table = pq.read_table(io.BytesIO(data))
        else:
            raise ConfigError(f"--datasets: {where} is not a CSV, JSONL or Parquet table")
    except pa.ArrowInvalid as e:
        raise ConfigError(f"--datasets: cannot parse {where}: {e}") from e
    for name in string_columns:
        if name in table.column_names and table.schema.field(name).type != pa.string():
            table = table.set_column(table.column_names.index(name), name,
                                     table.column(name).cast(pa.string()))
    return table


def chunk_rows(storage: Storage, spec: DatasetSpec) -> list[dict]:
    """The chunk table of a chunked set as ``{file, audio, parent, index}`` dicts (table order):
    ``file`` as written in the table (it becomes the chunk's id), ``audio`` its resolved URI."""
    cols = (spec.file_column, spec.parent_column)
    table = read_table(storage, spec.uri, cols)
    missing = [c for c in (*cols, spec.chunk_column) if c not in table.column_names]
    if missing:
        raise ConfigError(f"dataset {spec.name}: chunk table {spec.uri} lacks column(s) {', '.join(missing)} "
                          f"(columns: {', '.join(table.column_names)})")
    base = spec.audio_root or default_audio_root(
        storage, parent_uri(_first_file(storage, spec.uri) or spec.uri),
        table.column(spec.file_column)[0].as_py() if table.num_rows else None)
    out = []
    for file, parent, index in zip(*(table.column(c).to_pylist() for c in (*cols, spec.chunk_column))):
        out.append({"file": file, "audio": join_uri(base, file), "parent": parent, "index": int(index)})
    return out


def default_audio_root(storage: Storage, table_folder: str, first_file: str | None) -> str:
    """Where a chunk table's ``file_name`` values live without ``audio_root``: the leaderboard's
    layout keeps them under ``audio/`` beside the table; a table whose names already resolve from
    its own folder (``audio/x.flac``, or files beside it) is read from there. Decided once, on the
    first file."""
    if first_file is None:
        return table_folder
    fs, path = storage.filesystem(join_uri(table_folder, first_file))
    if fs.exists(path):
        return table_folder
    return join_uri(table_folder, "audio")


def parent_references(storage: Storage, spec: DatasetSpec) -> dict[str, str]:
    """``parent id -> reference text`` from a chunked set's parent table (ids as strings)."""
    table = read_table(storage, spec.parents_uri, (spec.parents_id_column,))
    text = pick_text_column(table.column_names, spec.parents_text_column,
                            f"dataset {spec.name}: parent table {spec.parents_uri}")
    if spec.parents_id_column not in table.column_names:
        raise ConfigError(f"dataset {spec.name}: parent table {spec.parents_uri} has no id column "
                          f"{spec.parents_id_column!r} (columns: {', '.join(table.column_names)})")
    ids = table.column(spec.parents_id_column).to_pylist()
    return dict(zip(ids, table.column(text).to_pylist()))
