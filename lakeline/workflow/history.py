"""Reading an execution the way the Step Functions console shows it: the states of its
definition (nested Map and Parallel states included) with their transitions, which state and
Map iteration each history event belongs to, what happened to every state (succeeded, failed,
caught or retried, running, aborted, not reached), each state's input and output, and a Map's
iteration counts. Used by ``lakeline workflow`` and the workflow pages of ``lakeline ui``.

Events name their state only on ``…StateEntered``/``…StateExited``; the others are placed by
following ``previousEventId``, which chains the events of one thread of control (the top level,
a Parallel branch, a Map iteration) as the engine and Step Functions write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from lakeline.errors import NotFoundError
from lakeline.ports.state import StateStore
from lakeline.workflow.engine import Execution, load_execution, resolve_execution

#: what happened to a state, worst first (the order a Map's iterations are summed up in)
STATUSES = ("failed", "aborted", "running", "caught", "succeeded", "notrun")
#: events that end an execution other than by success, and the status they leave open states in
_ENDINGS = {"ExecutionFailed": "failed", "ExecutionTimedOut": "failed", "ExecutionAborted": "aborted"}
#: events reporting that an attempt of a state failed (a retry or a catch may follow)
_FAILURES = ("TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed", "MapStateFailed",
             "ParallelStateFailed")
#: a Map iteration's last event, and the status it gives the iteration
_ITERATION_ENDS = {"MapIterationSucceeded": "succeeded", "MapIterationFailed": "failed",
                   "MapIterationAborted": "aborted"}
#: JSON longer than this (characters) is cut in what :func:`read` keeps of inputs and outputs
MAX_JSON = 100_000


def summary(ex: Execution) -> dict[str, Any]:
    """An execution as ``DescribeExecution`` (plus its redrive count) shows it."""
    stop = ex.stop_date.isoformat() if ex.stop_date else None
    return {"executionArn": ex.execution_arn, "name": ex.name, "status": ex.status,
            "startDate": ex.start_date.isoformat(), "stopDate": stop,
            "output": ex.output, "error": ex.error, "cause": ex.cause, "redriveCount": ex.redrive_count}


def find_execution(store: StateStore, ref: str) -> Execution:
    """The stored execution ``ref`` names (its ARN, name or a unique name prefix) with its
    history; :class:`UsageError` (code ``EXECUTION_NOT_FOUND`` or ``AMBIGUOUS_EXECUTION``)
    listing the candidates when none or several match."""
    arn = resolve_execution(store, ref)
    ex = load_execution(store, arn)
    if ex is None:  # deleted between the two reads
        raise NotFoundError(f"no execution {arn!r}")
    return ex


# ---- the definition -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    """An arrow of the state graph: ``kind`` is next, choice, default or catch."""

    target: str
    kind: str
    label: str = ""


@dataclass
class StateInfo:
    """One state of a definition; ``path`` is unique (``Map/Inner`` for a nested one)."""

    path: str
    name: str
    type: str
    parent: str | None
    comment: str
    transitions: list[Transition]
    #: ends its machine (End, Succeed, Fail): the top level's go to the End node
    terminal: bool
    start: bool
    #: the state's ASL (a Map's or Parallel's with its inner machines)
    definition: dict[str, Any] = field(default_factory=dict, repr=False)


def walk(definition: dict[str, Any], parent: str | None = None) -> list[StateInfo]:
    """Every state of ``definition``, a Map's and a Parallel's inner states after it."""
    out: list[StateInfo] = []
    states: dict[str, Any] = definition.get("States") or {}
    prefix = f"{parent}/" if parent is not None else ""
    for name, state in states.items():
        typ = str(state.get("Type", "?"))
        moves: list[Transition] = []
        if state.get("Next"):
            moves.append(Transition(prefix + state["Next"], "next"))
        for i, rule in enumerate(state.get("Choices") or []):
            if rule.get("Next"):
                moves.append(Transition(prefix + rule["Next"], "choice", _rule_text(rule) or f"rule {i + 1}"))
        if state.get("Default"):
            moves.append(Transition(prefix + state["Default"], "default", "Default"))
        for catcher in state.get("Catch") or []:
            if catcher.get("Next"):
                moves.append(Transition(prefix + catcher["Next"], "catch",
                                        "Catch " + ", ".join(catcher.get("ErrorEquals") or [])))
        terminal = bool(state.get("End")) or typ in ("Succeed", "Fail")
        out.append(StateInfo(prefix + name, name, typ, parent, str(state.get("Comment", "")), moves, terminal,
                             name == definition.get("StartAt"), state))
        inner = [state.get("ItemProcessor") or state.get("Iterator")] if typ == "Map" else (
            state.get("Branches") or [] if typ == "Parallel" else [])
        for machine in inner:
            if isinstance(machine, dict):
                out += walk(machine, prefix + name)
    return out


def _rule_text(rule: dict[str, Any]) -> str:
    """A Choice rule in a few words: ``$.dq.passed == true``, ``$.n >= $.max``, ``And``."""
    variable = rule.get("Variable")
    for key, value in rule.items():
        if key in ("Variable", "Next", "Comment") or variable is None:
            continue
        shown = str(value) if key.endswith("Path") else orjson.dumps(value).decode()
        op = key.removesuffix("Path")
        for word, symbol in (("GreaterThanEquals", ">="), ("LessThanEquals", "<="), ("GreaterThan", ">"),
                             ("LessThan", "<"), ("Equals", "==")):
            if op.endswith(word):
                return f"{variable} {symbol} {shown}"
        return f"{variable} {key} {shown}"
    if rule.get("Condition"):
        return str(rule["Condition"])
    return next((key for key in ("And", "Or", "Not") if key in rule), "")


# ---- the history --------------------------------------------------------------------------------
@dataclass
class StateRun:
    """One entry into a state (a loop or a redrive enters a state again)."""

    path: str
    #: the Map iteration it ran in ("" at the top level; see :func:`iteration_key`)
    iteration: str
    entered_event: int
    entered: str
    input: str | None
    exited: str | None = None
    output: str | None = None
    status: str = "running"
    #: failed Task attempts within it (each a retry, or the failure a Catch caught)
    failures: int = 0
    error: str | None = None
    cause: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "event": self.entered_event, "status": self.status,
                "entered": self.entered, "exited": self.exited, "input": self.input, "output": self.output,
                "failures": self.failures, "error": self.error, "cause": self.cause}


@dataclass
class Iteration:
    """One iteration of a Map state: its key, index and what happened to it."""

    key: str
    map_path: str
    index: int
    status: str = "running"


@dataclass
class Place:
    """Where a history event belongs: a state (its path, or None) in a Map iteration ("" if none)."""

    state: str | None
    iteration: str


@dataclass
class Reading:
    """What an execution's history says (see :func:`read`)."""

    states: list[StateInfo]
    #: one per history event, in its order
    places: list[Place]
    #: (iteration key, state path) -> its entries, oldest first
    runs: dict[tuple[str, str], list[StateRun]] = field(default_factory=dict)
    #: Map path -> its iterations by key, in the order they started
    iterations: dict[str, dict[str, Iteration]] = field(default_factory=dict)
    #: Map path -> its items, over all the iterations of an enclosing Map
    lengths: dict[str, int] = field(default_factory=dict)

    def status(self, path: str, iteration: str = "") -> str:
        """What happened to state ``path`` in ``iteration``: its last entry's status."""
        runs = self.runs.get((iteration, path))
        return runs[-1].status if runs else "notrun"

    def counts(self, map_path: str) -> dict[str, int]:
        """A Map's iterations by status (those that never started are ``notrun``)."""
        found: dict[str, int] = {}
        for it in self.iterations.get(map_path, {}).values():
            found[it.status] = found.get(it.status, 0) + 1
        missing = self.lengths.get(map_path, 0) - sum(found.values())
        if missing > 0:
            found["notrun"] = missing
        return {s: found[s] for s in STATUSES if s in found}


def iteration_key(parent: str, map_path: str, index: int) -> str:
    """The key of iteration ``index`` of Map ``map_path`` run within iteration ``parent``."""
    here = f"{map_path}#{index}"
    return f"{parent}|{here}" if parent else here


@dataclass(frozen=True)
class _Frame:
    """What is open in a thread of control: a state entry, or a Map iteration."""

    path: str
    iteration: str
    is_iteration: bool = False


Frames = tuple[_Frame, ...]


def read(ex: Execution) -> Reading:
    """Place every event of ``ex``'s history and tell what happened to each state."""
    return _Reader(ex).read()


class _Reader:
    """One pass over a history: each event continues the thread of its ``previousEventId``."""

    def __init__(self, ex: Execution) -> None:
        self.ex = ex
        self.reading = Reading(walk(ex.definition), [])
        self.info = {s.path: s for s in self.reading.states}
        self.children: dict[str | None, dict[str, str]] = {}
        for s in self.reading.states:
            self.children.setdefault(s.parent, {}).setdefault(s.name, s.path)
        self.open: dict[tuple[str, str], StateRun] = {}  # (iteration, path) -> the entry not yet left
        self.map_started: dict[tuple[str, str], int] = {}  # (iteration, Map path) -> items of its last start

    def read(self) -> Reading:
        after: dict[int, Frames] = {}  # event id -> what is open in its thread after it
        for event in self.ex.history:
            stack = after.get(int(event.get("previousEventId") or 0), ())
            typ = str(event.get("type", ""))
            if typ.endswith("StateEntered"):
                stack = self.entered(event, stack)
            elif typ.endswith("StateExited"):
                stack = self.exited(event, stack)
            elif typ == "MapIterationStarted":
                stack = self.iteration_started(event, stack)
            elif typ in _ITERATION_ENDS:
                stack = self.iteration_ended(event, stack)
            else:
                stack = self.other(event, stack)
            after[int(event["id"])] = stack
        if self.ex.status != "RUNNING":  # ended without an ending event (a store of an older engine)
            for run in list(self.open.values()):
                self.close(run, "succeeded" if self.ex.status == "SUCCEEDED" else "failed")
        return self.reading

    def close(self, run: StateRun, status: str) -> None:
        run.status = status
        self.open.pop((run.iteration, run.path), None)

    def place(self, state: str | None, iteration: str) -> None:
        self.reading.places.append(Place(state, iteration))

    def entered(self, event: dict[str, Any], stack: Frames) -> Frames:
        details = _details(event)
        stack, path = self.enter(stack, str(details.get("name", "")))
        iteration = stack[-1].iteration if stack else ""
        run = StateRun(path, iteration, int(event["id"]), _when(event), _pretty(details.get("input")))
        self.reading.runs.setdefault((iteration, path), []).append(run)
        self.open[(iteration, path)] = run
        self.place(path, iteration)
        return (*stack, _Frame(path, iteration))

    def enter(self, stack: Frames, name: str) -> tuple[Frames, str]:
        """The thread's frames once state ``name`` is entered, and its path: the frames above its
        parent (a Map iteration, a Parallel, or none at the top) are left, and a state left
        without a StateExited is closed as caught (it failed and a Catch moved on)."""
        while stack:
            top = stack[-1]
            contains = top.is_iteration or (top.path in self.info and self.info[top.path].type == "Parallel")
            if contains and name in self.children.get(top.path, {}):
                return stack, self.children[top.path][name]
            left = None if top.is_iteration else self.open.get((top.iteration, top.path))
            if left is not None:
                self.close(left, "caught")
            stack = stack[:-1]
        return (), self.children.get(None, {}).get(name, name)

    def exited(self, event: dict[str, Any], stack: Frames) -> Frames:
        details = _details(event)
        frame = stack[-1] if stack and not stack[-1].is_iteration else None
        path = frame.path if frame else str(details.get("name", ""))
        iteration = _iteration(stack)
        run = self.open.get((iteration, path))
        if run is not None:
            run.exited, run.output = _when(event), _pretty(details.get("output"))
            self.close(run, "caught" if run.failures else "succeeded")
        self.place(path, iteration)
        return stack[:-1] if frame else stack

    def iteration_started(self, event: dict[str, Any], stack: Frames) -> Frames:
        details = _details(event)
        map_path = _map_path(stack, details)
        index = int(details.get("index", 0))
        key = iteration_key(_iteration(stack), map_path, index)
        self.reading.iterations.setdefault(map_path, {})[key] = Iteration(key, map_path, index)
        self.place(map_path, key)
        return (*stack, _Frame(map_path, key, is_iteration=True))

    def iteration_ended(self, event: dict[str, Any], stack: Frames) -> Frames:
        typ = str(event["type"])
        frames = [f for f in stack if f.is_iteration]
        key = frames[-1].iteration if frames else ""
        map_path = frames[-1].path if frames else _map_path(stack, _details(event))
        it = self.reading.iterations.get(map_path, {}).get(key)
        if it is not None:
            it.status = _ITERATION_ENDS[typ]
        inside = [r for r in self.open.values() if r.iteration == key or r.iteration.startswith(key + "|")]
        for run in inside:
            self.close(run, "aborted" if typ == "MapIterationAborted" else "failed")
        owner = self.open.get((key.rpartition("|")[0], map_path))
        failed = [r for r in inside if r.error is not None]
        if typ == "MapIterationFailed" and owner is not None and owner.error is None and failed:
            owner.error, owner.cause = failed[-1].error, failed[-1].cause  # what failed the Map
        self.place(map_path, key)
        while stack and not stack[-1].is_iteration:
            stack = stack[:-1]
        return stack[:-1]

    def other(self, event: dict[str, Any], stack: Frames) -> Frames:
        """Task, Map and Parallel progress events and the execution's own: they belong to the
        state open in their thread."""
        typ, details = str(event["type"]), _details(event)
        frame = next((f for f in reversed(stack) if not f.is_iteration), None)
        iteration = _iteration(stack)
        self.place(frame.path if frame else None, iteration)
        run = self.open.get((iteration, frame.path)) if frame else None
        if typ == "MapStateStarted" and frame is not None:
            length = int(details.get("length", 0))
            before = self.map_started.get((iteration, frame.path), 0)
            self.map_started[(iteration, frame.path)] = length
            lengths = self.reading.lengths
            lengths[frame.path] = lengths.get(frame.path, 0) - before + length
        if typ in _FAILURES and run is not None:
            run.failures += 1
            if details.get("error") is not None:
                run.error, run.cause = details.get("error"), details.get("cause")
        if typ in _ENDINGS:
            if run is not None and run.error is None:  # a Fail state, a Map: the execution's error
                run.error, run.cause = details.get("error"), details.get("cause")
            for left in list(self.open.values()):
                self.close(left, _ENDINGS[typ])
            return ()
        return stack


def _iteration(stack: Frames) -> str:
    """The Map iteration a thread is in ("" at the top level)."""
    return stack[-1].iteration if stack else ""


def _map_path(stack: Frames, details: dict[str, Any]) -> str:
    frame = next((f for f in reversed(stack) if not f.is_iteration), None)
    return frame.path if frame is not None else str(details.get("name", ""))


def _details(event: dict[str, Any]) -> dict[str, Any]:
    """The ``…EventDetails`` of an event ({} when it has none)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def details(event: dict[str, Any]) -> dict[str, Any]:
    """The ``…EventDetails`` of an event without the ``…Details: {truncated}`` bookkeeping."""
    return {k: v for k, v in _details(event).items() if k not in ("inputDetails", "outputDetails")}


def _when(event: dict[str, Any]) -> str:
    ts = event.get("timestamp")
    return ts.isoformat(timespec="milliseconds") if isinstance(ts, datetime) else str(ts or "")


def timestamp(event: dict[str, Any]) -> str:
    """An event's time as ISO 8601 text (milliseconds)."""
    return _when(event)


def _pretty(text: Any) -> str | None:
    """JSON text indented for reading (cut at :data:`MAX_JSON` characters)."""
    if text is None:
        return None
    try:
        value = orjson.loads(text) if isinstance(text, (str, bytes)) else text
        out = orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()
    except orjson.JSONDecodeError:
        out = str(text)
    if len(out) > MAX_JSON:
        return out[:MAX_JSON] + f"\n… ({len(out) - MAX_JSON:,} more characters)"
    return out
