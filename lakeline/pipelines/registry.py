"""One registry of pipelines: built-ins, pipeline files, installed packages, registered objects.

Where pipelines come from, in order (a later source may not reuse an earlier name):

1. the built-in reference pipelines (:data:`BUILTINS`);
2. installed packages: the entry-point group ``lakeline.pipelines``, each entry a
   :class:`~lakeline.pipelines.base.Pipeline` object or a callable returning one::

       [project.entry-points."lakeline.pipelines"]
       orders = "my_package.orders:ORDERS"

3. :func:`register_pipeline` calls in the running program;
4. pipeline files ``HOME/pipelines/*.toml`` of the lake (:mod:`lakeline.pipelines.declared`).

:func:`registry` builds the registry of a lake's settings and checks it: two pipelines with
one name, two with one table, a landing prefix inside another's, or ``[pipelines.<name>]``
settings for no pipeline are :class:`~lakeline.errors.ConfigError` naming the sources.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakeline.config import CONFIG_FILE, Settings
from lakeline.errors import ConfigError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.base import Pipeline, check_name
from lakeline.pipelines.declared import load_file
from lakeline.stages.spec import Route, StreamSpec
from lakeline.tables.schema import TableSpec

#: the reference pipelines, loaded like entry points (``module:attribute``).
BUILTINS = (
    "lakeline.pipelines.shipments:SHIPMENTS",
    "lakeline.pipelines.transactions:TRANSACTIONS",
    "lakeline.pipelines.retail.pipeline:RETAIL",
    "lakeline.pipelines.carbon.pipeline:CARBON",
    "lakeline.pipelines.totesys.pipeline:TOTESYS",
)
ENTRY_POINT_GROUP = "lakeline.pipelines"
#: where a lake keeps its declared pipelines.
PIPELINES_DIR = "pipelines"

_registered: dict[str, Pipeline] = {}
_lock = threading.Lock()


def register_pipeline(pipeline: Pipeline) -> Pipeline:
    """Register a pipeline object for every lake this program opens; returns it (so it can
    decorate an instance). Registering another object under a taken name is refused."""
    if not isinstance(pipeline, Pipeline):
        raise UsageError(f"register_pipeline takes a lakeline.Pipeline, got {type(pipeline).__name__}")
    check_name(pipeline.name, f"pipeline {type(pipeline).__name__}")
    with _lock:
        found = _registered.get(pipeline.name)
        if found is not None and found is not pipeline:
            raise UsageError(f"a pipeline named {pipeline.name!r} is already registered ({found.origin})")
        if pipeline.origin == "builtin":
            pipeline.origin = f"registered ({type(pipeline).__module__}.{type(pipeline).__qualname__})"
        _registered[pipeline.name] = pipeline
    return pipeline


def unregister_pipeline(name: str) -> None:
    """Forget a pipeline :func:`register_pipeline` registered (tests, notebooks)."""
    with _lock:
        _registered.pop(name, None)


def registered() -> list[Pipeline]:
    """Pipelines registered in this program (sent to worker processes)."""
    with _lock:
        return list(_registered.values())


def _load_ref(ref: str, origin: str) -> Pipeline:
    module, _, attr = ref.partition(":")
    try:
        obj: Any = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{origin}: cannot load pipeline {ref!r}: {exc}") from None
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = obj()
    if not isinstance(obj, Pipeline):
        raise ConfigError(f"{origin}: {ref!r} is not a lakeline.Pipeline (got {type(obj).__name__})")
    return obj


def _entry_points() -> list[Pipeline]:
    out = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        p = _load_ref(ep.value, f"entry point {ep.name} ({ep.value})")
        if p.origin == "builtin":
            p.origin = f"entry point {ep.name} ({ep.value})"
        out.append(p)
    return out


def pipeline_files(home: Path) -> list[Path]:
    """The declared pipeline files of a lake, by name."""
    folder = home / PIPELINES_DIR
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


@dataclass
class Registry:
    """The pipelines of one lake, by name."""

    pipelines: dict[str, Pipeline]
    settings: Settings

    def __iter__(self) -> Iterator[Pipeline]:
        return iter(self.pipelines.values())

    def __contains__(self, name: object) -> bool:
        return name in self.pipelines

    def names(self) -> list[str]:
        """Every pipeline's name, sorted."""
        return sorted(self.pipelines)

    def get(self, name: str) -> Pipeline:
        """The pipeline called ``name``; :class:`UsageError` listing the known ones."""
        try:
            return self.pipelines[name]
        except KeyError:
            raise UsageError(f"unknown pipeline {name!r}; pipelines: {', '.join(self.names())}") from None

    def for_key(self, key: str) -> Pipeline | None:
        """The pipeline whose landing prefix holds ``key``."""
        for p in self.pipelines.values():
            prefix = p.landing_prefix
            if prefix and key.startswith(prefix):
                return p
        return None

    def stream(self, name: str) -> StreamSpec:
        """The stream spec of streaming pipeline ``name``."""
        spec = self.get(name).stream(self.settings)
        if spec is None:
            raise UsageError(f"pipeline {name!r} is not a streaming pipeline")
        return spec

    def route(self, key: str) -> Route | None:
        """How ingest treats a landing key (None: no pipeline's prefix holds it)."""
        p = self.for_key(key)
        if p is None:
            return None
        return Route(p.name, p.stream(self.settings), p.on_landed)

    def tables(self) -> list[tuple[Pipeline, TableSpec]]:
        """Every table of every pipeline, with its pipeline."""
        return [(p, t) for p in self.pipelines.values() for t in p.tables(self.settings)]

    def table(self, name: str) -> tuple[Pipeline, TableSpec]:
        """The pipeline and spec of the table called ``name`` (``silver.shipments``)."""
        for p, t in self.tables():
            if t.name == name:
                return p, t
        raise UsageError(f"no pipeline writes {name!r}; tables: "
                         f"{', '.join(sorted(t.name for _, t in self.tables()))}")

    def check(self) -> Registry:
        """Validate every pipeline's settings and the registry as a whole; returns self."""
        tables: dict[str, str] = {}
        for p in self.pipelines.values():
            p.settings(self.settings)
            for t in p.tables(self.settings):
                if t.name in tables:
                    raise ConfigError(f"{p.origin}: table {t.name} is already written by pipeline "
                                      f"{tables[t.name]!r}; choose another table name")
                tables[t.name] = p.name
        prefixes = [(p.landing_prefix, p) for p in self.pipelines.values() if p.landing_prefix]
        for a, pa in prefixes:
            for b, pb in prefixes:
                if pa is not pb and b.startswith(a):
                    raise ConfigError(f"{pb.origin}: landing prefix {b!r} lies inside {a!r} of {pa.name!r}")
        for name in self.settings.pipelines:
            if name not in self.pipelines:
                origin = next((o for k, o in self.settings.origins.items()
                               if k.startswith(f"pipelines.{name}.")), str(self.settings.home / CONFIG_FILE))
                raise ConfigError(f"{origin}: [pipelines.{name}] names no pipeline; pipelines: "
                                  f"{', '.join(self.names())}")
        return self


def load(settings: Settings, extra: list[Pipeline] | None = None) -> Registry:
    """The registry of a lake: built-ins, entry points, registered pipelines (and ``extra``),
    then the lake's pipeline files. Not checked (see :meth:`Registry.check`)."""
    found: dict[str, Pipeline] = {}

    def add(p: Pipeline) -> None:
        check_name(p.name, f"{p.origin}: pipeline name")
        if p.name in found and found[p.name] is not p:
            raise ConfigError(f"{p.origin}: pipeline {p.name!r} already exists ({found[p.name].origin}); "
                              "rename the file or the pipeline")
        found[p.name] = p

    for ref in BUILTINS:
        add(_load_ref(ref, "lakeline"))
    for p in [*_entry_points(), *registered(), *(extra or [])]:
        add(p)
    for path in pipeline_files(settings.home):
        add(load_file(path))
    return Registry(found, settings)


_cache: dict[Any, Registry] = {}


def registry(settings: Settings) -> Registry:
    """The checked registry of a lake (cached until a pipeline file changes or a pipeline is
    registered)."""
    files = tuple((str(p), p.stat().st_mtime_ns) for p in pipeline_files(settings.home))
    key = (repr(settings), files, tuple(id(p) for p in registered()))
    with _lock:
        found = _cache.get(key)
    if found is not None:
        return found
    reg = load(settings).check()
    with _lock:
        if len(_cache) > 16:
            _cache.clear()
        _cache[key] = reg
    return reg


def for_lake(lake: Lake) -> Registry:
    """The registry of ``lake``'s settings."""
    return registry(lake.settings)
