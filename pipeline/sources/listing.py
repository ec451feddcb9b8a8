"""Listing inputs once: detect each input's format and build the utterance index (no audio read).

Formats: a folder/prefix of audio files, JSONL/CSV manifests, Parquet shards in the Hugging Face
datasets layout, WebDataset tar shards. Each ``--input`` may be a folder/prefix, a single file or a
glob (``s3://bkt/shards/train-*.tar``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.formats import FORMAT_EXTENSIONS, MANIFEST_EXTENSIONS, extension
from pipeline.sources.ids import relative_id
from pipeline.sources.items import file_item, mark_duplicates
from pipeline.sources.manifest import manifest_items, read_manifest_rows
from pipeline.sources.shards import index_parquet_shards, index_tar_shards
from pipeline.retry import retry_call
from pipeline.storage import Storage, to_uri

@dataclass(frozen=True)
class Listing:
    """One input resolved: its format, root (for relative ids) and the files it covers, sorted."""

    input: str
    format: str
    root: str                 # filesystem path the ids are relative to
    paths: tuple[str, ...]    # filesystem paths
    files: tuple[str, ...]    # the same as URIs


def detect_format(files: list[str], is_single_file: bool) -> str:
    """The format implied by file extensions. A folder: tar > parquet > audio (manifests in a folder
    need ``--format manifest``); a single file: by its extension."""
    exts = {extension(f) for f in files}
    if is_single_file and exts & MANIFEST_EXTENSIONS:
        return "manifest"
    for fmt in ("webdataset", "parquet", "audio"):
        if exts & FORMAT_EXTENSIONS[fmt]:
            return fmt
    raise ConfigError(
        f"cannot tell the format of the input from its files ({', '.join(sorted(exts)) or 'none'}); "
        "pass --format audio|manifest|parquet|webdataset")


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
    except OSError as e:
        raise ConfigError(storage.redact(
            f"--input {uri!r} cannot be listed ({type(e).__name__}: {e}); check the path, "
            "--s3-endpoint and the AWS credentials")) from e
    if listed is None:
        raise ConfigError(f"--input {uri!r} does not exist (or is not readable); check the path "
                          "(for s3:// also --s3-endpoint and the AWS credentials)")
    found, root, single = listed
    found = [f for f in found if not f.endswith("/")]
    if not found:
        raise ConfigError(f"--input {uri!r} is empty (no files); point --input at a folder of "
                          "audio files, a manifest, or Parquet/tar shards")
    chosen = detect_format(found, single) if fmt == "auto" else fmt
    keep = [f for f in found if extension(f) in FORMAT_EXTENSIONS[chosen]]
    if not keep:
        raise ConfigError(f"--input {uri!r} holds no {chosen} files "
                          f"(extensions {', '.join(sorted(FORMAT_EXTENSIONS[chosen]))})")
    return Listing(input=uri, format=chosen, root=root, paths=tuple(keep),
                   files=tuple(to_uri(fs, f) for f in keep))


def index_audio_files(listing: Listing) -> list[dict]:
    return [file_item(relative_id(listing.root, path), uri)
            for path, uri in zip(listing.paths, listing.files)]


def index_manifests(listing: Listing, storage: Storage, columns: SourceColumns) -> list[dict]:
    items = []
    for uri in listing.files:
        fs, path = storage.filesystem(uri)
        try:
            text = retry_call(lambda: fs.cat_file(path), what=f"reading {uri}",
                              budget_s=storage.retry_seconds, redact=storage.redact).decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(storage.redact(f"cannot read manifest {uri}: {e}; check that it "
                                             "is a UTF-8 JSONL/CSV file you can read")) from e
        items.extend(manifest_items(read_manifest_rows(text, extension(uri)), uri, columns))
    return items


def build_index(inputs: tuple[str, ...], fmt: str, storage: Storage,
                columns: SourceColumns) -> tuple[list[dict], list[Listing]]:
    """All utterances of all inputs, in input order, duplicates marked."""
    items: list[dict] = []
    listings = [list_input(uri, fmt, storage) for uri in inputs]
    for listing in listings:
        if listing.format == "audio":
            items.extend(index_audio_files(listing))
        elif listing.format == "manifest":
            items.extend(index_manifests(listing, storage, columns))
        elif listing.format == "parquet":
            items.extend(index_parquet_shards(listing.files, storage, columns))
        else:
            items.extend(index_tar_shards(listing.files, storage, columns))
    return mark_duplicates(items), listings
