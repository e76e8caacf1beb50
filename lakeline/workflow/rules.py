"""EventBridge-style rules that start workflows under ``lakeline serve``.

In ``lakeline.toml``::

    [[rules]]
    name = "nightly-ops"
    schedule = "cron(15 1 * * ? *)"          # or "rate(1 hour)"
    workflow = "ops_replay_quality"           # a shipped workflow, or definition = "path.asl.json"
    input = '''{"bronze_bucket": "landing", "src_prefix": "bronze/orders/",
              "dest_prefix_base": "bronze/replay/nightly", "window_hours": 24,
              "record_type": "orders", "min_parquet_objects": 1,
              "poll_interval_seconds": 30, "max_attempts": 20}'''   # the seed's input names

    [[rules]]
    name = "gate-new-partitions"
    event = { zone = "silver", prefix = "orders/", suffix = ".parquet" }   # object created
    workflow = "quality_gate"
    input = '{"record_type": "orders"}'  # merged with {bucket, key, size, etag}

(``orders``: any streaming pipeline's table; the README shows the same rules for shipments.)

A schedule rule fires once per tick (compare-and-swap in the state store, so two `serve`
processes never both fire it); missed ticks fire once. The ops workflow loads its replay itself
(its ``Process`` step drives the queues inside ``serve``, as one more worker). An event rule
fires once per new object version (``key#etag``) matching its zone, prefix and suffix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from lakeline import log
from lakeline.config import ZONES
from lakeline.errors import ConfigError, LakelineError, UsageError
from lakeline.lake import Lake
from lakeline.schedule import Scheduler, parse
from lakeline.workflow.engine import TaskRegistry, run_definition

SEEN = "rule_seen"
#: the keys a ``[[rules]]`` table may have
KEYS = ("name", "schedule", "event", "workflow", "definition", "input")
_log = log.get("rules")


def validate(rules: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Checked rules; :class:`ConfigError` naming the rule and the problem. Everything a tick
    would otherwise trip over is checked here, at start: unknown keys, the schedule (a valid
    expression), the event (a known zone, text prefix and suffix), the input (a JSON object)
    and a ``definition`` file (readable, a JSON object). ``RuleRunner`` checks workflow names."""
    out = []
    names: set[str] = set()
    for i, rule in enumerate(rules):
        name = str(rule.get("name") or f"rule-{i}")
        unknown = sorted(set(rule) - set(KEYS))
        if unknown:
            raise ConfigError(f"rule {name}: unknown key {', '.join(unknown)} (keys: {', '.join(KEYS)})")
        if name in names:
            raise ConfigError(f"rule {name}: two rules have this name")
        names.add(name)
        if ("schedule" in rule) == ("event" in rule):
            raise ConfigError(f"rule {name}: give exactly one of schedule or event")
        if ("workflow" in rule) == ("definition" in rule):
            raise ConfigError(f"rule {name}: give exactly one of workflow or definition")
        checked = dict(rule, name=name, input=_input(name, rule.get("input", "{}")))
        if "schedule" in rule:
            if not isinstance(rule["schedule"], str):
                raise ConfigError(f"rule {name}: schedule must be a string such as \"rate(1 hour)\", "
                                  f"got {rule['schedule']!r}")
            try:
                checked["parsed"] = parse(rule["schedule"])
            except UsageError as exc:
                raise ConfigError(f"rule {name}: schedule: {exc}") from None
        else:
            _check_event(name, rule["event"])
        if "workflow" in rule and not isinstance(rule["workflow"], str):
            raise ConfigError(f"rule {name}: workflow must be a workflow name, got {rule['workflow']!r}")
        if "definition" in rule:
            checked["definition_body"] = _definition(name, rule["definition"])
        out.append(checked)
    return out


def _input(name: str, raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):  # a TOML table
        return raw
    if not isinstance(raw, str):
        raise ConfigError(f"rule {name}: input must be a JSON object in a string, got {raw!r}")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"rule {name}: input is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ConfigError(f"rule {name}: input must be a JSON object, got {raw!r}")
    return payload


def _check_event(name: str, event: Any) -> None:
    if not isinstance(event, dict) or "zone" not in event:
        raise ConfigError(f"rule {name}: event needs a zone (and optional prefix, suffix)")
    if event["zone"] not in ZONES:
        raise ConfigError(f"rule {name}: event zone {event['zone']!r} is not a zone ({', '.join(ZONES)})")
    unknown = sorted(set(event) - {"zone", "prefix", "suffix"})
    if unknown:
        raise ConfigError(f"rule {name}: event has unknown key {', '.join(unknown)} (zone, prefix, suffix)")
    for key in ("prefix", "suffix"):
        if not isinstance(event.get(key, ""), str):
            raise ConfigError(f"rule {name}: event {key} must be a string, got {event[key]!r}")


def _definition(name: str, path: Any) -> dict[str, Any]:
    """The ASL definition a rule names by file, read at start."""
    try:
        body = orjson.loads(Path(str(path)).read_bytes())
    except OSError as exc:
        raise ConfigError(f"rule {name}: definition {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"rule {name}: definition {path} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ConfigError(f"rule {name}: definition {path} must be a JSON object (an ASL state machine)")
    return body


class RuleRunner:
    """Evaluates the lake's rules; call :meth:`tick` periodically. ``tasks`` binds the
    workflows' steps; ``definitions(name)`` finds a workflow by name."""

    def __init__(self, lake: Lake, tasks: TaskRegistry, definitions: Callable[[str], dict[str, Any]]) -> None:
        self.lake = lake
        self.tasks = tasks
        self.definitions = definitions
        self.rules = validate(lake.settings.rules)
        for rule in self.rules:  # an unknown workflow fails now, not at its first fire
            if "workflow" in rule:
                try:
                    definitions(rule["workflow"])
                except LakelineError as exc:
                    raise ConfigError(f"rule {rule['name']}: {exc}") from None
        scheduled = {r["name"]: r["parsed"] for r in self.rules if "parsed" in r}
        self.scheduler = Scheduler(scheduled, lake.state) if scheduled else None

    def tick(self, now: datetime | None = None) -> list[str]:
        """Start the workflows whose rule matched; returns their execution ARNs."""
        at = now or datetime.now(UTC)
        started: list[str] = []
        due = set(self.scheduler.due(at)) if self.scheduler else set()
        for rule in self.rules:
            if rule["name"] in due:
                started.append(self._start(rule, dict(rule["input"])))
            elif "event" in rule:
                for payload in self._new_objects(rule):
                    started.append(self._start(rule, {**rule["input"], **payload}))
        return started

    def _new_objects(self, rule: dict[str, Any]) -> list[dict[str, Any]]:
        ev = rule["event"]
        zone, prefix, suffix = str(ev["zone"]), str(ev.get("prefix", "")), str(ev.get("suffix", ""))
        out = []
        for info in self.lake.store.list(zone, prefix):
            if not info.key.endswith(suffix):
                continue
            seen = f"{rule['name']}#{zone}/{info.key}#{info.etag}"
            if self.lake.state.get(SEEN, seen) is not None:
                continue
            self.lake.state.put(SEEN, seen, {"at": time.time()})
            out.append({"bucket": self.lake.store.bucket(zone), "key": info.key, "size": info.size,
                        "etag": info.etag})
        return out

    def _start(self, rule: dict[str, Any], payload: dict[str, Any]) -> str:
        defn = self.definitions(str(rule["workflow"])) if "workflow" in rule else rule["definition_body"]
        ex = run_definition(defn, payload, tasks=self.tasks, store=self.lake.state)
        _log.info("rule started a workflow", extra={"data": {
            "rule": rule["name"], "execution": ex.execution_arn, "status": ex.status}})
        return ex.execution_arn
