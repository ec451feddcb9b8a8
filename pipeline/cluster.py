"""Connecting to Ray, the driver-wide Ray Data settings, and what a job on a cluster must check.

Connection rules (``ensure_ray``), in Ray's own order:

* ``RAY_ADDRESS`` set (``ray job submit`` sets it; ``local`` starts a private instance): used.
  A ``host:port`` that does not accept a connection within :data:`GCS_PROBE_TIMEOUT_S` is a
  :class:`~pipeline.config.ConfigError` (one line), never Ray's endless reconnect loop.
* Unset: the cluster recorded by the last ``ray start`` on this machine
  (``ray_current_cluster`` under ``<temp>/ray/``, ``<temp>`` being ``$RAY_TMPDIR`` or the
  system's temporary directory) is
  joined, as ``ray.init()`` does; if that cluster no longer answers, one line says so and a local
  instance is started instead.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import socket
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace

from pipeline.config import ConfigError, TranscribeConfig
from pipeline.storage import STORAGE_ERRORS, Storage, is_remote, strip_file_scheme

# Storage errors Ray's Parquet writer retries with its own backoff (10 attempts, up to 32 s
# apart), added to Ray's defaults: connection loss and 5xx from S3-compatible servers. Regular
# expressions (``re.search``), as Ray's ``DataContext.retried_io_errors`` expects (substring matching is deprecated).
RETRIED_WRITE_ERRORS = (r"AWS Error NETWORK_CONNECTION", r"Could not connect",
                        r"HTTP status 50[0234]", r"AWS Error SERVICE_UNAVAILABLE",
                        r"AWS Error INTERNAL_FAILURE")
GCS_PROBE_TIMEOUT_S = 3.0
# Ray log lines that are noise to a user of this job (shown with --verbose): the token-auth
# notice every Ray >= 2.60 driver prints.
QUIET_PATTERNS = (re.compile(r"Token authentication is enabled for this Ray cluster"),
                  # switched off on purpose in a narrow terminal (pipeline/progress.py)
                  re.compile(r"^Progress bars disabled\. To enable"))
# Ray's core worker (C++) writes this straight to the driver's stderr for every Ray Data actor
# pool, whose constructor arguments Ray Data itself ``ray.put``s (its DataContext and the
# MapTransformer holding our class and its small by-value kwargs; ray#57733). The driver owns and
# holds those objects for the whole execution, so restarts cannot lose them: a false alarm here.
NATIVE_NOISE = re.compile(rb"has constructor arguments in the object store and max_restarts > 0")


def recorded_cluster() -> tuple[str | None, str]:
    """(GCS address recorded by the last ``ray start`` on this machine or ``None``, the file)."""
    from ray._common.utils import get_ray_address_file

    path = get_ray_address_file(None)
    try:
        with open(path) as f:
            return (f.read().strip() or None), path
    except OSError:
        return None, path


def gcs_answers(address: str, timeout_s: float = GCS_PROBE_TIMEOUT_S) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``timeout_s`` seconds."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                      timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def choose_address(env: dict | None = None, say=print) -> str | None:
    """The ``address`` for ``ray.init`` following the module's rules (``None``: Ray's default)."""
    env = os.environ if env is None else env
    address = env.get("RAY_ADDRESS") or None
    if address is not None:
        if _is_gcs_address(address) and not gcs_answers(address):
            raise ConfigError(f"RAY_ADDRESS={address} does not answer (no Ray cluster there "
                              f"within {GCS_PROBE_TIMEOUT_S:g} s); start the cluster, fix "
                              "RAY_ADDRESS, or set RAY_ADDRESS=local to run on this machine")
        return address
    recorded, path = recorded_cluster()
    if recorded is not None and not gcs_answers(recorded):
        say(f"note: the Ray cluster recorded in {path} ({recorded}) does not answer; "
            "starting a local Ray instance instead")
        return "local"
    return None


def _is_gcs_address(address: str) -> bool:
    return "://" not in address and address not in ("local", "auto") and ":" in address


class RayUnavailable(RuntimeError):
    """Ray itself could not be started or reached (a node that timed out during start-up); the
    job says so in one line and exits 1."""


# Ray Data's own helper actors in a job's driver (its stats actor, autoscaling coordinator and
# actor location tracker), each a worker process of its own.
RAY_DATA_HELPER_WORKERS = 4


SOFT_LIMIT_ENV = "RAY_num_workers_soft_limit"


def worker_pool_config(cpus: int | None = None) -> dict:
    """Ray ``_system_config`` for an instance a job starts itself: ``num_workers_soft_limit``, how
    many **idle** worker processes Ray keeps (Ray's default: one per CPU; each one above it is
    killed after a second idle, and started again, importing Python, pyarrow and Ray Data, the next
    time a task needs it). A job here runs up to ``cpus`` CPU tasks and actors (decoders and
    inference actors), up to ``cpus`` light tasks (score, write: :func:`light_tasks`) and Ray
    Data's helper actors at once, so it keeps ``2 * cpus + RAY_DATA_HELPER_WORKERS``: the
    processes the job's busiest moment had anyway. ``python -m bench.worker_pool`` measures both
    side by side (stand-in pipeline, 20x corpus, 2 cores; README): Ray's default started 5 worker
    processes per 20 s job, this limit 1 (the job's new inference actor), and the job's CPU per
    audio second was about halved. ``cpus``: the machine's
    (``os.cpu_count()``) when ``None``. On a cluster started with ``ray start``, the same limit is
    the environment variable ``RAY_num_workers_soft_limit`` on each node (README); a job that
    finds it set leaves its own instance to it too."""
    cpus = int(cpus or os.cpu_count() or 1)
    return {"num_workers_soft_limit": 2 * cpus + RAY_DATA_HELPER_WORKERS}


def starts_local_instance(address: str | None) -> bool:
    """Whether ``ray.init(address=address)`` starts a Ray instance of its own (``local``, or no
    address with no cluster recorded on this machine) rather than joining one."""
    return address == "local" or (address is None and recorded_cluster()[0] is None)


def _is_start_failure(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, (ConnectionError, TimeoutError)) or "timed out during startup" in text \
        or "Failed to start" in text or "Failed to connect to GCS" in text


def ensure_ray(verbose: bool | None = None, say=print) -> None:
    """Connect this driver to Ray (see the module docstring); quiet unless ``verbose``.

    Raises :class:`ConfigError` when ``RAY_ADDRESS`` names a cluster that does not answer, and
    :class:`RayUnavailable` when Ray fails to start (a node that timed out during start-up).
    """
    import ray

    if ray.is_initialized():
        return
    verbose = job_options().verbose if verbose is None else verbose
    address = choose_address(say=say)
    quiet_ray_logs(verbose)
    # a limit the user set (RAY_num_workers_soft_limit, README) is theirs: Ray's _system_config
    # would win over it
    own = {"_system_config": worker_pool_config()} \
        if starts_local_instance(address) and SOFT_LIMIT_ENV not in os.environ else {}
    try:
        ray.init(address=address, logging_level=logging.INFO if verbose else logging.WARNING,
                 log_to_driver=verbose, **own)
    except Exception as e:  # noqa: BLE001 - Ray's start-up failures (node timeout, no GCS) are one line
        if ray.is_initialized() or not _is_start_failure(e):
            raise
        where = "a local Ray instance" if address in (None, "local") else f"Ray at {address}"
        raise RayUnavailable(f"{where} did not start: {str(e).strip().splitlines()[0]} (a busy or "
                             "short-of-memory machine can cause this; run the same command again, or "
                             "pass --verbose for Ray's own messages)") from e
    stop_on_sigterm()
    if not verbose and _native_filter.get("wanted"):
        _native_filter["active"] = _NativeStderrFilter()


_native_filter: dict = {}


@contextmanager
def job_console():
    """The console of one job run: inside it, once Ray is connected, the core worker's false
    alarm (:data:`NATIVE_NOISE`) is dropped from file descriptor 2; everything else passes."""
    _native_filter["wanted"] = True
    try:
        yield
    finally:
        _native_filter.pop("wanted", None)
        active = _native_filter.pop("active", None)
        if active is not None:
            active.close()


@contextmanager
def quiet_console(verbose: bool = False):
    """For commands that start Ray their own way (``jobs.benchmark``): inside, unless
    ``verbose``, Ray's notices (:data:`QUIET_PATTERNS`) and the core worker's false alarm
    (:data:`NATIVE_NOISE`) stay off the console, as :func:`job_console` keeps them for the jobs."""
    if verbose:
        yield
        return
    quiet_ray_logs(False)
    native = _NativeStderrFilter()
    try:
        yield
    finally:
        native.close()


class _NativeStderrFilter:
    """File descriptor 2 replaced by a pipe whose reader forwards every byte to the original
    stderr except whole lines matching :data:`NATIVE_NOISE` (partial lines, such as progress
    bars, pass at once)."""

    def __init__(self):
        import threading

        sys.stderr.flush()
        self.original = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.thread = threading.Thread(target=self._forward, args=(read,), daemon=True)
        self.thread.start()

    def _forward(self, read: int) -> None:
        pending = b""
        while chunk := os.read(read, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not NATIVE_NOISE.search(line))
            if pending and not pending.startswith(b"["):   # not the start of a Ray log line
                out, pending = out + pending, b""
            if out:
                os.write(self.original, out)
        if pending:
            os.write(self.original, pending)
        os.close(read)

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self.original, 2)   # closes the pipe's last write end: the reader sees EOF
        self.thread.join(timeout=5)
        os.close(self.original)


class _QuietFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.search(message) for p in QUIET_PATTERNS)


class _ProgressOnly(logging.Filter):
    """Ray Data's console lines reduced to one progress line per stage (``Write: 5/5``) and
    warnings; its INFO lines (plans, resources, timings) stay in ``ray-data.log``."""

    STAGE = re.compile(r"^\S.*: \d+/(\d+|\?)$")
    # Ray Data's reports of a failed task: the exception itself reaches the driver, where a user
    # mistake or an outage becomes one ``error:`` line and anything else keeps its traceback.
    TASK_FAILURE = ("An exception was raised from a task", "Failed to apply UDF",
                    "Exception occurred in user code", "Full stack trace")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.getMessage().startswith(self.TASK_FAILURE):
            return False
        if record.levelno >= logging.WARNING:
            return True
        message = record.getMessage()
        return bool(self.STAGE.match(message)) and not message.startswith("Total Progress")


def quiet_ray_logs(verbose: bool) -> None:
    """Console handlers of Ray's loggers: Ray's notices hidden, Ray Data reduced to its progress
    (``verbose``: everything Ray prints is shown)."""
    import ray.data  # noqa: F401 - configures the ``ray.data`` logger's handlers

    for name, extra in (("ray", None), ("ray.data", _ProgressOnly())):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.FileHandler) or type(handler).__name__ == \
                    "SessionFileHandler":
                continue
            if not type(handler).__module__.startswith("ray."):
                continue   # someone else's handler (a test runner's log capture): left alone
            if isinstance(handler, logging.StreamHandler) and handler.stream is not sys.stderr:
                # Console handlers write to this job's stderr (a job run in process after another
                # one, as in tests, must not write to a stream that was replaced and closed).
                handler.setStream(sys.stderr)
            if verbose:
                continue
            for f in (_QuietFilter(), extra):
                if f is not None and not any(type(g) is type(f) for g in handler.filters):
                    handler.addFilter(f)


def stop_on_sigterm() -> None:
    """SIGTERM stops the job as Ctrl-C does (``KeyboardInterrupt`` in the main thread), so what
    it wrote stays resumable and the job's own cleanup runs."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def configure_ray_data() -> None:
    """Ray Data settings of this driver, set before any dataset is built (datasets capture them):
    more storage errors retried by the writer, and worker errors raised as themselves (so that a
    :class:`StorageUnavailable` reaches the driver as such)."""
    from ray.data import DataContext

    context = DataContext.get_current()
    # Extended in place: assigning a new list makes Ray warn about substring matching even when
    # every pattern is a valid regular expression, as ours are.
    context.retried_io_errors.extend(p for p in RETRIED_WRITE_ERRORS
                                     if p not in context.retried_io_errors)
    context.raise_original_map_exception = True
    # A terminal too narrow for Ray's bars gets our plain progress lines instead (progress.py).
    from pipeline.progress import console_progress_mode

    if console_progress_mode() == "lines":
        context.enable_progress_bars = False
    # The light stages' task cap (the cluster's CPUs) is an upper bound; Ray warns whenever a
    # stage has fewer blocks than that, which says nothing a user can act on.
    warnings.filterwarnings("ignore", message=r"The maximum number of concurrent tasks for",
                            category=UserWarning)


def read_parquet_by_tasks(path: str, filesystem):
    """``ray.data.read_parquet(path, filesystem=...)`` read by plain read tasks, for the job's own
    outputs (a few files written by Ray's writer, read back several times by the pseudo-label job).

    Ray 2.60's default Parquet reader (Ray Data's "datasource V2") reads the footers in a pool of
    32 ``FooterReader`` actors that every ``read_parquet`` execution starts and kills: 32 worker
    processes per read, 7-8 s for 3 small files on a 2-CPU machine against 0.3 s for the read
    tasks of the V1 reader, and the kept set is 4-6 reads. The V1 reader is chosen for this one
    dataset (``DataContext.use_datasource_v2`` is read when the dataset is built); the caller's
    own setting is left as it was. Rays without the setting read as they always did."""
    import ray.data
    from ray.data import DataContext

    context = DataContext.get_current()
    if not getattr(context, "use_datasource_v2", False):
        return ray.data.read_parquet(path, filesystem=filesystem)
    context.use_datasource_v2 = False
    try:
        return ray.data.read_parquet(path, filesystem=filesystem)
    finally:
        context.use_datasource_v2 = True


# Stages that only move Arrow columns or bytes (reading Parquet row groups, scoring, writing)
# ask Ray for no CPU. Ray Data reserves the cluster's CPUs for the upstream operators first and
# lets a downstream one wait "until upstream finishes": with every CPU held by decoders and
# inference actors, any CPU request here holds the first result back until the whole corpus is
# decoded (a 100,000-row manifest wrote nothing in 5 min). Their task count is capped at the
# cluster's CPU count instead (``light_tasks``).
LIGHT_TASK_CPUS = 0


def light_tasks():
    """The compute strategy of a ``LIGHT_TASK_CPUS`` stage: at most as many tasks at once as
    the cluster has CPUs."""
    import ray.data

    return ray.data.TaskPoolStrategy(size=max(1, int(ray.cluster_resources().get("CPU", 1))))


# --- what a job checks and says around running on a cluster ------------------------------------

SUBMITTED_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"   # set by Ray's job supervisor for its drivers


@dataclass(frozen=True)
class JobOptions:
    """Process-wide options of a job run from the command line (``jobs/_common.run_job``)."""

    verbose: bool = False            # show Ray's INFO logs and worker output on the console
    output_is_shared: bool = False   # a local --output is on storage every node mounts


_options = [JobOptions()]


def set_job_options(options: JobOptions) -> None:
    _options[0] = options


def job_options() -> JobOptions:
    return _options[0]


def absolute_uri(uri: str | None) -> str | None:
    """A local path made absolute (``~`` and ``file://`` resolved); URIs and ``None`` as given."""
    if uri is None or is_remote(uri):
        return uri
    return os.path.abspath(os.path.expanduser(strip_file_scheme(uri)))


def submitted_working_dir(env: dict | None = None) -> str | None:
    """The ``--working-dir`` of a ``ray job submit`` this driver runs under, else ``None``."""
    env = os.environ if env is None else env
    try:
        job = json.loads(env.get(SUBMITTED_JOB_ENV) or "{}")
    except ValueError:
        return None
    return (job.get("runtime_env") or {}).get("working_dir")


def absolute_paths(config: TranscribeConfig, env: dict | None = None) -> TranscribeConfig:
    """``config`` with local ``--input``, ``--output`` and ``--audio-root`` made absolute here, on
    the driver, before anything is shipped to workers (whose working directory differs).

    Under ``ray job submit --working-dir`` the driver runs in a temporary copy of that folder: a
    relative local ``--output`` would land there, so it is a :class:`ConfigError`.
    """
    working_dir = submitted_working_dir(env)
    if working_dir and not is_remote(config.output) and \
            not os.path.isabs(os.path.expanduser(strip_file_scheme(config.output))):
        raise ConfigError(f"--output {config.output} is relative, and this job runs in Ray's "
                          f"temporary copy of --working-dir {working_dir}: its results would be "
                          "lost there; pass s3://… or an absolute path on shared storage")
    return replace(config, inputs=tuple(absolute_uri(u) for u in config.inputs),
                   output=absolute_uri(config.output),
                   audio_root=absolute_uri(config.audio_root))


def check_output_shared(output: str, nodes: int, shared: bool | None = None) -> None:
    """Refuse a local ``--output`` on a cluster of ``nodes`` > 1 nodes: each node's writers would
    leave their files on their own disk. ``shared`` (``--output-is-shared``) overrides."""
    shared = job_options().output_is_shared if shared is None else shared
    if is_remote(output) or shared or nodes <= 1:
        return
    raise ConfigError(f"--output {output} is a local path, but the Ray cluster has {nodes} nodes "
                      "and each would write its share to its own disk; use s3://… or a shared "
                      "mount, and pass --output-is-shared when it is one")


def alive_nodes() -> int:
    """Alive nodes of the connected Ray cluster."""
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


def results_line(output: str) -> str:
    """The job's last line: where its results are (an absolute path or a URI)."""
    return f"results: {absolute_uri(output)}"


@contextmanager
def removing_output_if_left_empty(storage: Storage, output: str):
    """On any failure (Ctrl-C included) remove ``output`` — and the parent folders created with
    it — when this run created it and left it empty; results already written stay."""
    fs, path = storage.filesystem(output)
    try:
        created = _missing_parts(fs, path, is_remote(output))
    except STORAGE_ERRORS:   # cannot even look (credentials, network): the job's checks say why
        created = []
    try:
        yield
    except BaseException:
        for part in created:
            _remove_if_empty(fs, part, is_remote(output))
        raise


def _missing_parts(fs, path: str, remote: bool) -> list[str]:
    """``path`` and its ancestors that do not exist yet, deepest first (just ``path`` on object
    stores, whose folders are prefixes)."""
    missing = []
    while path and not fs.exists(path):
        missing.append(path)
        parent = posixpath.dirname(path.rstrip("/"))
        if remote or parent == path:
            break
        path = parent
    return missing


def _remove_if_empty(fs, path: str, remote: bool) -> None:
    try:
        fs.invalidate_cache(path)
        if not fs.exists(path):
            return
        if any(fs.size(p) for p in fs.find(path)):
            return
        fs.rm(path, recursive=True)
        if remote:
            # Filer-backed stores (SeaweedFS) keep the prefix as a folder entry until its
            # "folder/" key is deleted; elsewhere that key is absent and this is a no-op.
            fs.rm_file(path.rstrip("/") + "/")
    except STORAGE_ERRORS:
        pass   # best effort: the job's own error is the one to report


# --- what the inference pool asks for, against what the cluster has (never hang) ---------------

DECODE_CPUS = 1.0   # a decode task's CPU request (pipeline/run.py): at least one must fit beside the actors


def autoscaler_ceiling() -> dict | None:
    """The most CPU and GPU the cluster's autoscaler may grow to (``{"CPU": n, "GPU": n}``), or
    ``None`` when no autoscaler can add nodes (a local instance, a ``ray start`` cluster)."""
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
        if config is None or not config.node_group_configs:
            return None
        return {key: float(state._calculate_max_resource_from_cluster_config(config, key) or 0)
                for key in ("CPU", "GPU")}
    except Exception:  # noqa: BLE001 - an API Ray may move: without it, assume a fixed cluster
        return None


def plural(count: int, word: str) -> str:
    """``1 actor``, ``2 actors``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _fits(per_actor: float, total: float, reserved: float = 0.0) -> float:
    """How many actors asking ``per_actor`` fit in ``total`` less ``reserved`` (inf for 0)."""
    if per_actor <= 0:
        return float("inf")
    return max(0.0, (total - reserved) // per_actor)


def fit_resources(resources, *, cluster: dict | None = None, ceiling: dict | None | bool = False,
                  explicit_cpus: bool = True, say=print):
    """``resources`` (an :class:`~pipeline.config.ActorResources`) checked against the cluster:
    the inference actors (``min_actors`` of them at least) plus :data:`DECODE_CPUS` for decoding
    must fit in the cluster's CPUs and GPUs, or in what its autoscaler may add (``ceiling``;
    ``False``: ask Ray). Otherwise Ray Data would wait forever for resources that never come.

    * The smallest pool does not fit: :class:`ConfigError`, one line naming the flags to change.
    * Only the largest does: ``max_actors`` is capped to what fits, with one ``note:`` line.
    * The CPUs per actor were not given (``explicit_cpus`` false) and leave decoding no CPU: they
      are lowered so that one CPU stays free, with a ``note:``.
    """
    if cluster is None:
        import ray

        cluster = ray.cluster_resources()
    if ceiling is False:
        ceiling = autoscaler_ceiling()
    cpus = float(cluster.get("CPU", 0))
    gpus = float(cluster.get("GPU", 0))
    if ceiling is not None:
        cpus, gpus = max(cpus, ceiling.get("CPU", 0)), max(gpus, ceiling.get("GPU", 0))

    def has(amount: float, unit: str) -> str:
        if ceiling is not None:
            return f"the Ray cluster can grow to {amount:g} {unit}"
        return f"the Ray cluster has {amount:g} {unit} and no autoscaler to add nodes"
    low, high = resources.min_actors, resources.max_actors
    if resources.num_gpus and _fits(resources.num_gpus, gpus) < low:
        raise ConfigError(
            f"the inference pool needs {plural(low, 'actor')} × {resources.num_gpus:g} GPU, but "
            f"{has(gpus, 'GPU')}; pass --gpus-per-actor 0 to run the model on CPUs, or lower --actors "
            "(or add GPU nodes)")
    if not explicit_cpus and resources.num_cpus and \
            _fits(resources.num_cpus, cpus, DECODE_CPUS) < low:
        lowered = max(0.0, (cpus - DECODE_CPUS) / low)
        say(f"note: {resources.num_cpus:g} CPU per inference actor would leave decoding no CPU "
            f"on {cpus:g} CPU; each actor asks for {lowered:g} CPU instead (set --cpus-per-actor)")
        resources = replace(resources, num_cpus=lowered)
    fit = min(_fits(resources.num_cpus, cpus, DECODE_CPUS), _fits(resources.num_gpus, gpus), high)
    if fit < low:
        asked = low * resources.num_cpus + DECODE_CPUS
        raise ConfigError(
            f"the inference pool needs {plural(low, 'actor')} × {resources.num_cpus:g} CPU + "
            f"{DECODE_CPUS:g} CPU for decoding = {asked:g} CPU, but {has(cpus, 'CPU')}; "
            f"lower --actors (at most {int(fit)} fit beside decoding) or --cpus-per-actor")
    if fit < high:
        say(f"note: inference pool capped to {low}-{int(fit)} actors (--actors {low},{high} asked "
            f"for up to {high}): {has(cpus, 'CPU')}, {gpus:g} GPU, and decoding needs "
            f"{DECODE_CPUS:g} CPU beside the actors")
        resources = replace(resources, max_actors=int(fit))
    return resources


def _contains(outer: str, inner: str) -> bool:
    """Whether the folder/prefix ``outer`` is ``inner`` or holds it (same scheme, path prefix)."""
    outer, inner = outer.rstrip("/"), inner.rstrip("/")
    return bool(outer) and (inner == outer or inner.startswith(outer + "/"))


def check_output_outside_inputs(inputs: tuple[str, ...], output: str) -> None:
    """Refuse an output inside an input (every later run would read the results as input) or an
    input inside the output (``--overwrite`` would delete it), before anything is listed. Paths
    are compared as given after :func:`absolute_paths`; a glob's fixed folder is its input."""
    for uri in inputs:
        folder = uri.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
        folder = folder if folder == uri else folder.rsplit("/", 1)[0]
        if _contains(folder, output):
            raise ConfigError(f"--output {output} lies inside --input {uri}: every later run on "
                              "that input would read the results as audio; pick an output "
                              "outside the input")
        if _contains(output, folder):
            raise ConfigError(f"--input {uri} lies inside --output {output}: --overwrite would "
                              "delete it and the results would mix with it; pick an output "
                              "outside the input")
