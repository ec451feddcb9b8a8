"""Filesystems behind input and output URIs: local paths, ``s3://`` and anything fsspec knows.

A :class:`Storage` is built once on the driver (it reads the S3 endpoint and credentials from the
flags and the standard AWS environment variables) and shipped to Ray workers with the stages, so a
worker on another node does not need the driver's environment. Credentials are never part of its
``repr``, and :meth:`Storage.redact` blanks them out of any message before it is shown or stored.
Local Parquet output goes through an atomic filesystem (temporary name, then rename).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field

import fsspec
import fsspec.implementations.local

from pipeline.config import ConfigError
from pipeline.retry import DEFAULT_RETRY_SECONDS

S3_ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
CREDENTIAL_ENV_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
RETRY_SECONDS_ENV_VAR = "NLE_IO_RETRY_SECONDS"
# The S3 clients' own quick retries, kept short: the bounded backoff of pipeline/retry.py (budget
# ``retry_seconds``) is what rides out an outage, so one failing call must fail fast.
S3_ATTEMPTS_PER_REQUEST = 3
S3FS_CLIENT_OPTIONS = {"config_kwargs": {
    "connect_timeout": 10, "retries": {"max_attempts": S3_ATTEMPTS_PER_REQUEST, "mode": "standard"}}}
REDACTED = "***"


def is_remote(uri: str) -> bool:
    """True for ``scheme://`` URIs other than ``file://``."""
    return "://" in uri and not uri.startswith("file://")


def strip_file_scheme(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def protocol_of(uri: str) -> str:
    return uri.split("://", 1)[0] if is_remote(uri) else "file"


def join_uri(base: str, relative: str) -> str:
    """``base`` joined with a relative path; an absolute path or a full URI is returned as is."""
    if is_remote(relative) or relative.startswith("file://"):
        return strip_file_scheme(relative)
    if not is_remote(base):
        return os.path.normpath(os.path.join(base, relative))
    scheme, rest = base.split("://", 1)
    if relative.startswith("/"):
        return f"{scheme}://{rest.split('/', 1)[0]}{relative}"
    return f"{scheme}://{posixpath.normpath(posixpath.join(rest, relative))}"


def parent_uri(uri: str) -> str:
    if not is_remote(uri):
        return os.path.dirname(os.path.abspath(uri))
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{posixpath.dirname(rest.rstrip('/'))}"


def to_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A path inside ``fs`` back to a URI; local paths stay plain absolute paths."""
    if isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        return path
    return fs.unstrip_protocol(path)


@dataclass(frozen=True)
class Storage:
    """How to reach object stores: the S3 endpoint and credentials captured on the driver."""

    s3_endpoint: str | None = None
    s3_key: str | None = field(default=None, repr=False)
    s3_secret: str | None = field(default=None, repr=False)
    s3_token: str | None = field(default=None, repr=False)
    s3_region: str | None = None
    # backoff budget for transient I/O failures, in seconds
    retry_seconds: float = field(default=DEFAULT_RETRY_SECONDS, repr=False)

    @classmethod
    def from_env(cls, s3_endpoint: str | None = None, environ=None) -> "Storage":
        env = os.environ if environ is None else environ
        endpoint = s3_endpoint or next((env[k] for k in S3_ENDPOINT_ENV_VARS if env.get(k)), None)
        return cls(
            s3_endpoint=endpoint,
            s3_key=env.get("AWS_ACCESS_KEY_ID"),
            s3_secret=env.get("AWS_SECRET_ACCESS_KEY"),
            s3_token=env.get("AWS_SESSION_TOKEN"),
            s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            retry_seconds=retry_seconds_from(env),
        )

    def redact(self, text: str) -> str:
        """``text`` with the credentials (key id, secret, session token) replaced by ``***``."""
        for value in (self.s3_secret, self.s3_token, self.s3_key):
            if value:
                text = text.replace(value, REDACTED)
        return text

    def fsspec_options(self, protocol: str) -> dict:
        if protocol not in ("s3", "s3a"):
            return {}
        options: dict = {}
        if self.s3_endpoint:
            options["endpoint_url"] = self.s3_endpoint
        if self.s3_key and self.s3_secret:
            options.update(key=self.s3_key, secret=self.s3_secret)
            if self.s3_token:
                options["token"] = self.s3_token
        if self.s3_region:
            options["client_kwargs"] = {"region_name": self.s3_region}
        return options

    def filesystem(self, uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
        """The fsspec filesystem for ``uri`` and the path inside it."""
        uri = strip_file_scheme(uri)
        protocol = protocol_of(uri)
        if protocol == "file":
            return fsspec.filesystem("file"), os.path.abspath(uri)
        options = self.fsspec_options(protocol)
        if protocol in ("s3", "s3a"):
            options = {**S3FS_CLIENT_OPTIONS, **options}
        fs, path = fsspec.core.url_to_fs(uri, **options)
        return fs, path

    def arrow_filesystem(self, uri: str):
        """A pyarrow filesystem and path for writing Parquet at ``uri`` (native S3 where possible)."""
        import pyarrow.fs as pafs

        uri = strip_file_scheme(uri)
        protocol = protocol_of(uri)
        if protocol == "file":
            from pipeline.sinks.atomic_fs import atomic_local_filesystem

            return atomic_local_filesystem(), os.path.abspath(uri)
        if protocol in ("s3", "s3a"):
            kwargs: dict = {"region": self.s3_region or "us-east-1",
                            "retry_strategy": pafs.AwsStandardS3RetryStrategy(
                                max_attempts=S3_ATTEMPTS_PER_REQUEST)}
            if self.s3_endpoint:
                scheme, _, host = self.s3_endpoint.partition("://")
                kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
            if self.s3_key and self.s3_secret:
                kwargs.update(access_key=self.s3_key, secret_key=self.s3_secret,
                              session_token=self.s3_token)
            return pafs.S3FileSystem(**kwargs), uri.split("://", 1)[1].rstrip("/")
        fs, path = self.filesystem(uri)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def _client_errors() -> tuple[type, ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:   # no S3 client installed: only OSErrors can come
        return ()
    return (BotoCoreError, ClientError)


# What a storage call can raise besides OSError: botocore's own errors (no credentials, an
# endpoint that does not answer) reach us unwrapped through s3fs.
STORAGE_ERRORS: tuple[type, ...] = (OSError, *_client_errors())
CREDENTIAL_ERRORS = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                     "NoAuthTokenError")
ENDPOINT_ERRORS = ("EndpointConnectionError", "ConnectTimeoutError", "InvalidEndpointConfigurationError")
REJECTED_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                        "ExpiredToken", "Forbidden", "request signature we calculated does not match",
                        "Access Key Id you provided does not exist")


def storage_advice(exc: BaseException) -> str | None:
    """What to fix for a storage error caused by a setting (missing or rejected credentials, an
    endpoint that does not answer), or ``None`` for other errors."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & set(CREDENTIAL_ERRORS):
        return ("no S3 credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE), and --s3-endpoint URL for an S3-compatible store")
    if names & set(ENDPOINT_ERRORS):
        return ("the S3 endpoint does not answer: check --s3-endpoint URL (default: "
                "$AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS itself)")
    if any(word in str(exc) for word in REJECTED_CREDENTIALS):
        return ("the S3 store refused the credentials: check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY and --s3-endpoint")
    return None


def storage_error_line(what: str, exc: BaseException) -> str:
    """One line for a storage error met while doing ``what`` (``--input s3://b/x``)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    advice = storage_advice(exc) or "check the path, --s3-endpoint and the AWS credentials"
    return f"{what} cannot be reached ({type(exc).__name__}: {first}); {advice}"


def redact_env_credentials(text: str, environ=None) -> str:
    """``text`` with the values of the AWS credential variables replaced by ``***``."""
    env = os.environ if environ is None else environ
    for name in CREDENTIAL_ENV_VARS:
        if env.get(name):
            text = text.replace(env[name], REDACTED)
    return text


def retry_seconds_from(env) -> float:
    """The I/O retry budget from ``$NLE_IO_RETRY_SECONDS`` (default 120 s)."""
    text = env.get(RETRY_SECONDS_ENV_VAR)
    if not text:
        return DEFAULT_RETRY_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ConfigError(f"${RETRY_SECONDS_ENV_VAR} must be a number of seconds >= 0, got {text!r}")
    return value
