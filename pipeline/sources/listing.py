"""Listing inputs on the driver: each ``--input``'s format and files, split into index units.

The driver only lists (file names, no bytes); every file is opened inside a Ray task
(``pipeline/sources/index.py``). Formats: a folder/prefix of audio files, JSONL/CSV/TSV
manifests, Parquet shards in the Hugging Face datasets layout, WebDataset tar shards, LibriSpeech
trees, Kaldi data dirs. Each ``--input`` may be a folder/prefix, a single file or a glob
(``s3://bkt/shards/train-*.tar``).
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from dataclasses import dataclass

from pipeline.config import ConfigError
from pipeline.retry import StorageUnavailable, retry_call
from pipeline.sources.formats import (
    FORMAT_EXTENSIONS, FORMAT_HELP, KALDI_WAV_SCP, detect_format, is_librispeech_transcript, keeps,
)
from pipeline.sources.ids import strip_extension
from pipeline.storage import STORAGE_ERRORS, Storage, storage_advice, storage_error_line, to_uri

# Audio files of a folder are indexed this many to a Ray task.
FILES_PER_UNIT = 4096


@dataclass(frozen=True)
class Listing:
    """One input resolved: its format, root (URI the ids are relative to) and its files (URIs,
    sorted)."""

    input: str
    format: str
    root: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class IndexUnit:
    """The work of one index task.

    ``kind``: ``files`` (audio files, ids relative to ``root``), ``manifest``, ``parquet``,
    ``webdataset`` (one file each), ``librispeech`` (``uris[0]`` the chapter's ``*.trans.txt``,
    then its audio files; ``root`` the tree), ``kaldi`` (the data dir ``root``'s files).
    """

    kind: str
    uris: tuple[str, ...]
    root: str = ""


def _find(fs, path: str) -> tuple[list[str], str, bool] | None:
    """(files, root, is single file) of ``path`` in ``fs``; ``None`` if it does not exist."""
    if any(ch in path for ch in "*?["):
        return sorted(fs.glob(path)), path.split("*", 1)[0].rsplit("/", 1)[0], False
    if fs.isfile(path):
        return [path], path.rsplit("/", 1)[0], True
    if fs.isdir(path):
        return sorted(fs.find(path)), path.rstrip("/"), False
    return None


def list_input(uri: str, fmt: str, storage: Storage) -> Listing:
    """List ``uri`` once (recursively) and keep the files of its format."""
    fs, path = storage.filesystem(uri)
    try:
        listed = retry_call(lambda: _find(fs, path), what=f"listing {uri}",
                            budget_s=storage.retry_seconds, redact=storage.redact)
    except STORAGE_ERRORS as e:
        raise ConfigError(storage.redact(storage_error_line(f"--input {uri!r}", e))) from e
    except StorageUnavailable as e:   # before any work: no --resume to advise, a setting to check
        cause = e.__cause__
        if cause is None or storage_advice(cause) is None:
            raise
        raise ConfigError(storage.redact(storage_error_line(f"--input {uri!r}", cause))) from e
    if listed is None:
        raise ConfigError(f"--input {uri!r} does not exist (or is not readable); check the path "
                          "(for s3:// also --s3-endpoint and the AWS credentials)")
    found, root, single = listed
    found = [f for f in found if not f.endswith("/")]
    if not found:
        raise ConfigError(f"--input {uri!r} is empty (no files); point --input at a folder of "
                          "audio files, a manifest, or Parquet/tar shards")
    chosen = detect_format(found, single) if fmt == "auto" else fmt
    keep = [to_uri(fs, f) for f in found if keeps(chosen, f)]
    if chosen == "kaldi" and not any(posixpath.basename(f) == KALDI_WAV_SCP for f in keep):
        keep = []
    if not keep:
        wanted = ("wav.scp" if chosen == "kaldi" else "*.trans.txt and audio"
                  if chosen == "librispeech" else
                  "extensions " + ", ".join(sorted(FORMAT_EXTENSIONS[chosen])))
        raise ConfigError(f"--input {uri!r} holds no {chosen} files ({wanted}); {FORMAT_HELP}")
    return Listing(input=uri, format=chosen, root=to_uri(fs, root), files=tuple(keep))


def list_inputs(inputs: tuple[str, ...], fmt: str, storage: Storage) -> list[Listing]:
    return [list_input(uri, fmt, storage) for uri in inputs]


def _folder(uri: str) -> str:
    return posixpath.dirname(uri.rstrip("/"))


def _file_units(files, root: str) -> list[IndexUnit]:
    """Units of about ``FILES_PER_UNIT`` files; files that differ only by extension (``x.m4a``,
    ``x.mp4``: sorted next to each other) stay in one unit, where their ids are made distinct."""
    files, units, start = list(files), [], 0
    while start < len(files):
        end = min(start + FILES_PER_UNIT, len(files))
        while end < len(files) and strip_extension(files[end]) == strip_extension(files[end - 1]):
            end += 1
        units.append(IndexUnit("files", tuple(files[start:end]), root))
        start = end
    return units


def _librispeech_units(listing: Listing) -> list[IndexUnit]:
    """One unit per chapter folder (its ``*.trans.txt`` and audio); audio in folders without a
    transcript file is still indexed, as plain files without references."""
    transcripts: dict[str, list[str]] = defaultdict(list)
    audio: dict[str, list[str]] = defaultdict(list)
    for uri in listing.files:
        (transcripts if is_librispeech_transcript(uri) else audio)[_folder(uri)].append(uri)
    units = [IndexUnit("librispeech", (trans[0], *trans[1:], *audio.pop(folder, [])), listing.root)
             for folder, trans in sorted(transcripts.items())]
    loose = [uri for folder in sorted(audio) for uri in audio[folder]]
    return units + _file_units(loose, listing.root)


def _kaldi_units(listing: Listing) -> list[IndexUnit]:
    by_dir: dict[str, list[str]] = defaultdict(list)
    for uri in listing.files:
        by_dir[_folder(uri)].append(uri)
    return [IndexUnit("kaldi", tuple(files), folder) for folder, files in sorted(by_dir.items())
            if any(posixpath.basename(f) == KALDI_WAV_SCP for f in files)]


def plan_units(listings: list[Listing]) -> list[IndexUnit]:
    """The index tasks of all inputs, in input order (their order is the order ids are ranked
    in for "the first one wins")."""
    units: list[IndexUnit] = []
    for listing in listings:
        if listing.format == "audio":
            units += _file_units(listing.files, listing.root)
        elif listing.format == "librispeech":
            units += _librispeech_units(listing)
        elif listing.format == "kaldi":
            units += _kaldi_units(listing)
        else:
            units += [IndexUnit(listing.format, (uri,), listing.root) for uri in listing.files]
    return units

