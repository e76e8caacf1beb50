"""The local States Language interpreter (see :mod:`lakeline.workflow` for the contract).

Every state type runs: Task (callables from a :class:`TaskRegistry`, in a worker thread when a
timeout applies), Pass, Choice, Wait (through the injectable ``sleep``), Succeed, Fail,
Parallel (branches in threads) and inline Map (a thread pool of ``MaxConcurrency`` workers), in
either query language: JSONPath (input/output processing, intrinsic functions) or JSONata
(``Arguments``/``Output``/``Assign``, :mod:`lakeline.workflow.jsonata_expr`), with workflow
variables (:mod:`lakeline.workflow.variables`). Retry/Catch, the standard errors, the context
object, the payload limits and the cause texts are Step Functions' (measured against executions
recorded on AWS: ``tests/workflow/conformance``). Definitions are checked at load time
(:mod:`lakeline.workflow.definition`). Each execution records a history shaped like Step
Functions' ``GetExecutionHistory`` and, given a :class:`StateStore`, persists itself and its
history as it goes (tables ``wf_executions`` and ``wf_history``). A persisted execution that
ended FAILED, TIMED_OUT or ABORTED can be redriven (:func:`redrive_execution`, Step Functions'
RedriveExecution): it restarts at the top-level state it did not finish, and a top-level Map or
Parallel state reruns only the iterations / branches that did not succeed (their outputs are
kept in ``wf_redrive`` while the state runs). :func:`resolve_execution` finds an execution by
ARN, name or unique name prefix.

Not supported, refused at load time: ``.waitForTaskToken`` callbacks, a distributed Map's
ItemReader / ItemBatcher / ResultWriter (a DISTRIBUTED Map otherwise runs inline).
``HeartbeatSeconds`` is accepted; a local task never heartbeats, so only ``TimeoutSeconds`` ends
it.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from lakeline.errors import UsageError
from lakeline.ports.state import StateStore
from lakeline.workflow import errors as E
from lakeline.workflow import jsonata_expr as J
from lakeline.workflow import paths as P
from lakeline.workflow.choice import choose_rule, evaluate_rule, parse_timestamp
from lakeline.workflow.definition import (
    JSONATA,
    JSONPATH,
    load_definition,
    machine_language,
    state_language,
    validate_definition,
)
from lakeline.workflow.errors import StatesError, TaskError, error_matches
from lakeline.workflow.variables import Scope

__all__ = [
    "Execution",
    "TaskError",
    "TaskRegistry",
    "list_executions",
    "load_execution",
    "redrive_execution",
    "resolve_execution",
    "resume_or_fail",
    "run_definition",
    "validate_definition",
]

EXECUTIONS_TABLE = "wf_executions"
HISTORY_TABLE = "wf_history"
#: Outputs of the iterations and branches of a top-level Map or Parallel state that succeeded
#: while the state ran, keyed ``<execution arn>#<state>#<index>``: a redrive reuses them and
#: runs only the ones that failed or were aborted (as Step Functions' RedriveExecution does).
REDRIVE_TABLE = "wf_redrive"
#: The statuses RedriveExecution accepts.
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
REGION = "us-east-1"
ACCOUNT = "000000000000"
STATE_MACHINE_NAME = "lakeline-local"
#: History events are written in groups (one transaction each): at most this many are held,
#: for at most this long, and a top-level task's ``TaskStarted`` (before it runs), a Wait, a
#: state save and the end of the execution always flush. Inside a Map iteration or a Parallel
#: branch, events and the kept outputs of finished iterations are grouped too (a commit per
#: iteration would make each iteration cost a disk flush, ~10 ms, whatever its data): a
#: crash loses at most the last fraction of a second of them, and a resumed or redriven state
#: reruns the iterations whose output was not kept (tasks are idempotent). The saved current
#: state (what resume needs) is never behind.
HISTORY_BATCH = 64
HISTORY_FLUSH_SECONDS = 0.25
_FLUSH_AFTER = frozenset({"TaskStarted"})
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
#: a JSONata state without Output passes its input (or result) on untouched, not re-evaluated
_DEFAULT: Any = object()
#: errors whose cause names the state and the event it was entered at
_LOCATED = frozenset({E.RUNTIME, E.QUERY_EVALUATION_ERROR})
#: the largest state input/output Step Functions passes (256 KiB)
MAX_PAYLOAD_BYTES = 256 * 1024

TaskFn = Callable[[Any], Any]


# ---- public types --------------------------------------------------------------------------
@dataclass
class Execution:
    """One state machine execution (shaped like ``DescribeExecution`` plus its history)."""

    execution_arn: str
    name: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    start_date: datetime = field(default_factory=lambda: datetime.now(UTC))
    stop_date: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    input: Any = None
    state_machine_arn: str = ""
    definition: dict[str, Any] = field(default_factory=dict)
    redrive_count: int = 0
    redrive_date: datetime | None = None


class TaskRegistry:
    """Maps Task ``Resource`` values (and Lambda function names) to Python callables."""

    def __init__(self, functions: dict[str, TaskFn] | None = None) -> None:
        self._fns: dict[str, TaskFn] = dict(functions or {})

    def register(self, name: str, fn: TaskFn) -> TaskFn:
        """Register ``fn`` under ``name`` (a resource ARN or a Lambda function name)."""
        self._fns[name] = fn
        return fn

    def __contains__(self, name: object) -> bool:
        return name in self._fns

    def resolve(self, resource: str, parameters: Any) -> tuple[TaskFn, Any, bool]:
        """The callable, its payload and whether to wrap the result like ``lambda:invoke``.
        Raises StatesError when nothing is registered for the resource."""
        if resource in self._fns:
            return self._fns[resource], parameters, False
        if resource == LAMBDA_INVOKE or resource.startswith(LAMBDA_INVOKE + "."):
            if not isinstance(parameters, dict) or "FunctionName" not in parameters:
                raise StatesError("States.Runtime", "lambda:invoke needs Parameters.FunctionName")
            name = function_name(str(parameters["FunctionName"]))
            return self._lookup(name, resource), parameters.get("Payload"), True
        m = re.match(r"^arn:aws[\w-]*:lambda:[^:]*:[^:]*:function:([^:]+)", resource)
        if m:
            return self._lookup(m.group(1), resource), parameters, False
        raise StatesError(E.TASK_FAILED, f"no task is registered for resource {resource!r}")

    def _lookup(self, name: str, resource: str) -> TaskFn:
        fn = self._fns.get(name)
        if fn is None:
            raise StatesError(
                "Lambda.ResourceNotFoundException",
                f"Function not found: {name} (resource {resource})",
            )
        return fn


def function_name(ref: str) -> str:
    """The bare function name of a Lambda name, partial ARN or ARN (qualifier dropped)."""
    m = re.search(r"function:([^:]+)", ref)
    if m:
        return m.group(1)
    return ref.split(":")[0]


# ---- running ----------------------------------------------------------------------------------
class _ExecutionTimedOut(Exception):
    """The top-level TimeoutSeconds elapsed (not catchable)."""


class _Aborted(Exception):
    """A sibling branch/iteration failed; this one stops."""


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _details_key(event_type: str) -> str:
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return event_type[0].lower() + event_type[1:] + "EventDetails"


@dataclass
class _Flow:
    """A thread of control (the top level, a branch, an iteration): its last event id."""

    last: int
    abort: threading.Event | None = None
    parent: _Flow | None = None
    #: the variables this flow reads and assigns
    scope: Scope = field(default_factory=Scope)

    def aborted(self) -> bool:
        flow: _Flow | None = self
        while flow is not None:
            if flow.abort is not None and flow.abort.is_set():
                return True
            flow = flow.parent
        return False

    def child(self, abort: threading.Event | None) -> _Flow:
        """A Map iteration's or Parallel branch's flow: it reads this flow's variables as they are
        now, and its own assignments stay its own."""
        return _Flow(self.last, abort, self, self.scope.child())


class _Run:
    def __init__(
        self,
        execution: Execution,
        tasks: TaskRegistry,
        store: StateStore | None,
        max_workers: int,
        sleep: Callable[[float], None],
        deadline: float | None,
    ) -> None:
        self.ex = execution
        self.tasks = tasks
        self.store = store
        self.max_workers = max(1, max_workers)
        self.sleep = sleep
        self.deadline = deadline
        #: an EXPRESS execution (its context object has no RedriveCount)
        self.express = ":express:" in execution.execution_arn
        self.lock = threading.Lock()
        self.next_id = 1
        self._pending: list[tuple[str, str]] = []
        self._kept: list[tuple[str, str]] = []
        self._pending_since = 0.0
        #: the top-level state entered last and its input: where a resume or a redrive restarts
        self.current: tuple[str, Any] | None = None
        #: the variables when that state was entered (a resume or a redrive starts from them)
        self.current_vars: dict[str, Any] = {}
        #: set by a redrive: the top-level state it restarts, whose kept iterations are reused
        self.redriving: str | None = None

    # -- history / persistence --
    def emit(self, flow: _Flow | None, event_type: str, details: dict[str, Any] | None) -> int:
        with self.lock:
            event_id = self.next_id
            self.next_id += 1
            event: dict[str, Any] = {
                "id": event_id,
                "previousEventId": flow.last if flow is not None else 0,
                "timestamp": datetime.now(UTC),
                "type": event_type,
            }
            if details is not None:
                event[_details_key(event_type)] = details
            self.ex.history.append(event)
            if flow is not None:
                flow.last = event_id
            if self.store is not None:
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._pending.append((f"{self.ex.execution_arn}#{event_id:08d}",
                                      orjson.dumps(_event_to_json(event)).decode()))
                top_level = flow is None or flow.parent is None
                if (len(self._pending) >= HISTORY_BATCH or (event_type in _FLUSH_AFTER and top_level)
                        or time.monotonic() - self._pending_since >= HISTORY_FLUSH_SECONDS):
                    self._flush()
        return event_id

    def _flush(self) -> None:
        """Write buffered history events in one transaction, then the kept iteration outputs
        (caller holds ``self.lock``)."""
        if self.store is None:
            return
        if self._pending:
            pending, self._pending = self._pending, []
            self.store.put_many(HISTORY_TABLE, pending)
        if self._kept:
            kept, self._kept = self._kept, []
            self.store.put_many(REDRIVE_TABLE, kept)

    def flush(self) -> None:
        """Make every event emitted so far durable."""
        with self.lock:
            self._flush()

    def save(self) -> None:
        if self.store is None:
            return
        extra = {} if self.current is None else {"currentState": self.current[0],
                                                 "currentInput": self.current[1],
                                                 "currentVariables": self.current_vars}
        with self.lock:
            self._flush()
            self.store.put(EXECUTIONS_TABLE, self.ex.execution_arn, _execution_to_json(self.ex, **extra))

    # -- what a redrive reuses --
    def kept(self, name: str, reuse: bool) -> tuple[str | None, dict[int, Any]]:
        """The key prefix under which a top-level Map/Parallel state keeps the outputs of its
        finished iterations, and (``reuse``: a redrive) those kept so far; otherwise any
        left from an earlier entry of the state are dropped."""
        if self.store is None:
            return None, {}
        prefix = f"{self.ex.execution_arn}#{name}#"
        with self.lock:  # outputs kept but not yet written: written first, or dropped
            if reuse:
                self._flush()
            else:
                self._kept = [k for k in self._kept if not k[0].startswith(prefix)]
        items = self.store.query(REDRIVE_TABLE, prefix)
        if reuse:
            return prefix, {int(i.key[len(prefix):]): i.data.get("output") for i in items}
        for item in items:
            self.store.delete(REDRIVE_TABLE, item.key)
        return prefix, {}

    def keep(self, prefix: str | None, index: int, output: Any) -> None:
        """Keep the output of a finished iteration or branch (see :meth:`kept`); written with
        the next group of history events (see :data:`HISTORY_BATCH`)."""
        if prefix is not None and self.store is not None:
            with self.lock:
                if not self._pending and not self._kept:
                    self._pending_since = time.monotonic()
                self._kept.append((f"{prefix}{index:06d}", orjson.dumps({"output": output}).decode()))
                if (len(self._kept) >= HISTORY_BATCH
                        or time.monotonic() - self._pending_since >= HISTORY_FLUSH_SECONDS):
                    self._flush()

    # -- time --
    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        rem = self.remaining()
        if rem is not None and rem <= 0:
            raise _ExecutionTimedOut()

    def pause(self, seconds: float) -> None:
        """Sleep through the injectable ``sleep``, honouring the execution timeout."""
        rem = self.remaining()
        if rem is not None and seconds >= rem:
            self.sleep(max(rem, 0.0))
            raise _ExecutionTimedOut()
        if seconds > 0:
            self.flush()  # a waiting execution's history is visible to `workflow history`
            self.sleep(seconds)

    def context(
        self,
        state_name: str,
        entered: datetime,
        flow: _Flow,
        retry_count: int | None = None,
        map_item: tuple[int, Any] | None = None,
    ) -> P.Context:
        return P.make_context(
            execution_id=self.ex.execution_arn,
            execution_name=self.ex.name,
            execution_input=self.ex.input,
            start_time=_iso(self.ex.start_date),
            state_machine_id=self.ex.state_machine_arn,
            state_machine_name=STATE_MACHINE_NAME,
            state_name=state_name,
            entered_time=_iso(entered),
            retry_count=retry_count,
            redrive_count=None if self.express else self.ex.redrive_count,
            map_item=map_item,
            variables=flow.scope.view(),
        )

    # -- the interpreter --
    def run_machine(
        self,
        machine: dict[str, Any],
        data: Any,
        flow: _Flow,
        *,
        top: bool = False,
        start_at: str | None = None,
        language: str = JSONPATH,
    ) -> Any:
        states: dict[str, Any] = machine["States"]
        name: str = start_at or machine["StartAt"]
        lang = machine_language(machine, language)
        while True:
            self.check_deadline()
            if flow.aborted():
                raise _Aborted()
            state = states[name]
            typ = state["Type"]
            slang = state_language(state, lang)
            if top:
                self.current, self.current_vars = (name, data), flow.scope.view()
                self.save()
            entered_id = self.emit(
                flow,
                f"{typ}StateEntered",
                {"name": name, "input": _dumps(data), "inputDetails": {"truncated": False}},
            )
            entered = datetime.now(UTC)
            # a redrive reuses the kept iterations of the state it restarts, on its first entry only
            reuse = top and self.redriving == name
            self.redriving = None if top else self.redriving
            try:
                runner = self.run_jsonata_state if slang == JSONATA else self.run_state
                output, nxt = runner(name, state, data, flow, entered, top=top, reuse=reuse)
                text = _dumps(output)
                if len(text.encode()) > MAX_PAYLOAD_BYTES:
                    raise StatesError(E.DATA_LIMIT_EXCEEDED,
                                      f"The state/task '{name}' returned a result with a size exceeding "
                                      "the maximum number of bytes service limit.")
            except StatesError as err:
                if err.error in _LOCATED and not (err.cause or "").startswith("An error"):
                    err.cause = (
                        f"An error occurred while executing the state '{name}' "
                        f"(entered at the event id #{entered_id}). {err.cause or ''}"
                    ).rstrip()
                catcher = _find_catcher(state, err.error)
                if catcher is None:
                    raise
                error_output = {"Error": err.error, "Cause": err.cause or ""}
                ctx = self.context(name, entered, flow)
                data = self.caught(catcher, slang, data, error_output, ctx, flow, name)
                flow.scope.take_assigned()  # a caught state records no exit event
                name = catcher["Next"]
                continue
            exited: dict[str, Any] = {"name": name, "output": text, "outputDetails": {"truncated": False}}
            assigned = flow.scope.take_assigned()
            if assigned:  # as Step Functions records them: each value as JSON text
                exited["assignedVariables"] = {k: _dumps(v) for k, v in assigned.items()}
                exited["assignedVariablesDetails"] = {"truncated": False}
            self.emit(flow, f"{typ}StateExited", exited)
            if nxt is None:
                return output
            name, data = nxt, output

    def caught(self, catcher: dict[str, Any], lang: str, raw: Any, error_output: dict[str, Any],
               ctx: P.Context, flow: _Flow, name: str) -> Any:
        """The next state's input after ``catcher`` caught an error (and its assignments made)."""
        if lang == JSONATA:
            states = {"input": raw, "context": dict(ctx), "errorOutput": error_output}
            view = flow.scope.view()
            assigned = J.template(catcher.get("Assign", {}), states, view, "Assign")
            out = error_output
            if "Output" in catcher:
                out = J.template(catcher["Output"], states, view, "Output")
            flow.scope.assign(assigned, name)
            return out
        if "Assign" in catcher:
            flow.scope.assign(P.apply_template(catcher["Assign"], error_output, ctx), name)
        result_path = catcher.get("ResultPath", "$")
        return raw if result_path is None else P.place_result(result_path, raw, error_output)

    def run_state(
        self, name: str, state: dict[str, Any], raw: Any, flow: _Flow, entered: datetime,
        *, top: bool = False, reuse: bool = False,
    ) -> tuple[Any, str | None]:
        """Run a JSONPath state: its output and the next state (None: the machine ends)."""
        typ = state["Type"]
        nxt: str | None = None if state.get("End") else state.get("Next")
        if typ in ("Task", "Parallel", "Map"):
            return self.with_retry(name, state, raw, flow, entered, JSONPATH, top=top, reuse=reuse), nxt
        ctx = self.context(name, entered, flow)
        assign: dict[str, Any] | None = state.get("Assign")
        if typ == "Pass":
            effective = P.apply_input_path(state, raw, ctx)
            effective = P.apply_parameters(state, effective, ctx, "Parameters")
            result = state.get("Result", effective)
            assigned = P.apply_template(assign, result, ctx) if assign is not None else None
            out = P.apply_result_path(state, raw, result)
            out = P.apply_output_path(state, out, ctx)
        elif typ == "Choice":
            effective = P.apply_input_path(state, raw, ctx)
            rule = choose_rule(state, lambda r: evaluate_rule(r, effective, ctx))
            nxt = str(rule["Next"] if rule is not None else state["Default"])
            block = rule.get("Assign") if rule is not None else assign
            assigned = P.apply_template(block, effective, ctx) if block is not None else None
            out = P.apply_output_path(state, effective, ctx)
        elif typ == "Wait":
            effective = P.apply_input_path(state, raw, ctx)
            seconds = _wait_seconds(state, effective, ctx)
            assigned = P.apply_template(assign, effective, ctx) if assign is not None else None
            self.pause(seconds)
            out = P.apply_output_path(state, effective, ctx)
        elif typ == "Succeed":
            effective = P.apply_input_path(state, raw, ctx)
            return P.apply_output_path(state, effective, ctx), None
        elif typ == "Fail":
            raise _FailState(_fail_field(state, "Error", raw, ctx), _fail_field(state, "Cause", raw, ctx))
        else:  # pragma: no cover - validated at load time
            raise StatesError(E.RUNTIME, f"unknown state type {typ}")
        if assigned is not None:
            flow.scope.assign(assigned, name)
        return out, nxt

    def run_jsonata_state(
        self, name: str, state: dict[str, Any], raw: Any, flow: _Flow, entered: datetime,
        *, top: bool = False, reuse: bool = False,
    ) -> tuple[Any, str | None]:
        """Run a JSONata state: ``Assign`` and ``Output`` see the variables as they were before it
        (its assignments take effect after it), ``$states.input`` is its input."""
        typ = state["Type"]
        nxt: str | None = None if state.get("End") else state.get("Next")
        if typ in ("Task", "Parallel", "Map"):
            return self.with_retry(name, state, raw, flow, entered, JSONATA, top=top, reuse=reuse), nxt
        ctx = self.context(name, entered, flow)
        states = {"input": raw, "context": dict(ctx)}
        if typ == "Pass":
            states["result"] = raw  # a Pass state's "result" is its input, as on Step Functions
        view = flow.scope.view()
        block: Any = state.get("Assign")
        output: Any = state.get("Output", _DEFAULT)
        if typ == "Choice":
            def matches(rule: dict[str, Any]) -> bool:
                cond = rule["Condition"]
                if isinstance(cond, bool):
                    return cond
                return bool(J.evaluate_as(cond, states, view, "Condition", "boolean"))

            rule = choose_rule(state, matches)
            if rule is not None:
                nxt = str(rule["Next"])
                block, output = rule.get("Assign", block), rule.get("Output", output)
            else:
                nxt = str(state["Default"])
        elif typ == "Wait":
            self.pause(_jsonata_wait_seconds(state, states, view))
        elif typ == "Fail":
            error = _jsonata_text(state, "Error", states, view)
            cause = _jsonata_text(state, "Cause", states, view)
            raise _FailState(error, cause)
        elif typ == "Succeed":
            nxt = None
        assigned = J.template(block, states, view, "Assign") if block is not None else None
        out = raw if output is _DEFAULT else J.template(output, states, view, "Output")
        if assigned is not None:
            flow.scope.assign(assigned, name)
        return out, nxt

    def with_retry(self, name: str, state: dict[str, Any], raw: Any, flow: _Flow, entered: datetime,
                   lang: str, *, top: bool = False, reuse: bool = False) -> Any:
        retriers: list[dict[str, Any]] = state.get("Retry", [])
        counts = [0] * len(retriers)
        retry_count = 0
        while True:
            ctx = self.context(name, entered, flow, retry_count)
            try:
                # a Retry re-runs the whole state: only a redrive's first attempt reuses iterations
                return self.attempt(name, state, raw, flow, ctx, lang, top=top,
                                    reuse=reuse and retry_count == 0)
            except StatesError as err:
                k = next(
                    (i for i, r in enumerate(retriers) if error_matches(err.error, r["ErrorEquals"])),
                    None,
                )
                if k is None:
                    raise
                retrier = retriers[k]
                if counts[k] >= int(retrier.get("MaxAttempts", 3)):
                    raise
                self.pause(retry_delay(retrier, counts[k]))
                counts[k] += 1
                retry_count += 1

    def attempt(self, name: str, state: dict[str, Any], raw: Any, flow: _Flow, ctx: P.Context, lang: str,
                *, top: bool = False, reuse: bool = False) -> Any:
        typ = state["Type"]
        if lang == JSONATA:
            states: dict[str, Any] = {"input": raw, "context": dict(ctx)}
            view = flow.scope.view()
            effective = raw
            if "Arguments" in state:
                effective = J.template(state["Arguments"], states, view, "Arguments")
        else:
            effective = P.apply_input_path(state, raw, ctx)
            if typ in ("Task", "Parallel"):
                effective = P.apply_parameters(state, effective, ctx, "Parameters")
        if typ == "Task":
            result = self.call_task(state, effective, raw, flow, ctx, lang)
        else:
            # only a top-level Map/Parallel keeps its finished iterations for a redrive
            prefix, done = self.kept(name, reuse) if top else (None, {})
            if typ == "Parallel":
                result = self.run_parallel(state, effective, flow, lang, prefix, done)
            else:
                result = self.run_map(name, state, effective, flow, ctx, lang, prefix, done)
            if prefix is not None:
                self.kept(name, False)  # the state succeeded: nothing to keep any more
        block = state.get("Assign")
        if lang == JSONATA:
            states["result"] = result
            assigned = J.template(block, states, view, "Assign") if block is not None else None
            out = J.template(state["Output"], states, view, "Output") if "Output" in state else result
        else:
            # JSONPath: Assign reads the raw result, before ResultSelector (as Step Functions does)
            assigned = P.apply_template(block, result, ctx) if block is not None else None
            result = P.apply_result_selector(state, result, ctx)
            out = P.apply_result_path(state, raw, result)
            out = P.apply_output_path(state, out, ctx)
        if assigned is not None:
            flow.scope.assign(assigned, name)
        return out

    # -- Task --
    def call_task(self, state: dict[str, Any], payload: Any, raw: Any, flow: _Flow, ctx: P.Context,
                  lang: str) -> Any:
        resource: str = state["Resource"]
        timeout = _timeout_seconds(state, raw, ctx, lang)
        resource_type, resource_name = _resource_parts(resource)
        base = {"resourceType": resource_type, "resource": resource_name}
        try:
            fn, body, wrap = self.tasks.resolve(resource, payload)
        except StatesError as err:
            self.emit(flow, "TaskFailed", {**base, "error": err.error, "cause": err.cause or ""})
            raise
        sched: dict[str, Any] = {**base, "region": REGION, "parameters": _dumps(payload)}
        if timeout is not None:
            sched["timeoutInSeconds"] = timeout
        self.emit(flow, "TaskScheduled", sched)
        self.emit(flow, "TaskStarted", dict(base))
        rem = self.remaining()
        limit = timeout
        execution_limited = False
        if rem is not None and (limit is None or rem < limit):
            limit, execution_limited = max(rem, 0.0), True
        try:
            result = _call_with_timeout(fn, body, limit)
        except _TaskTimedOut:
            if execution_limited:
                raise _ExecutionTimedOut() from None
            cause = f"Task timed out after {timeout} seconds"
            self.emit(flow, "TaskTimedOut", {**base, "error": E.TIMEOUT, "cause": cause})
            raise StatesError(E.TIMEOUT, cause) from None
        except TaskError as exc:
            self.emit(flow, "TaskFailed", {**base, "error": exc.error, "cause": exc.cause or ""})
            raise StatesError(exc.error, exc.cause) from exc
        except Exception as exc:
            error = type(exc).__name__
            self.emit(flow, "TaskFailed", {**base, "error": error, "cause": str(exc)})
            raise StatesError(error, str(exc)) from exc
        if wrap:
            result = {"Payload": result, "StatusCode": 200}
        self.emit(
            flow, "TaskSucceeded", {**base, "output": _dumps(result), "outputDetails": {"truncated": False}}
        )
        return result

    # -- Parallel --
    def run_parallel(self, state: dict[str, Any], data: Any, flow: _Flow, lang: str,
                     prefix: str | None = None, done: dict[int, Any] | None = None) -> list[Any]:
        """Run the branches in threads; ``done`` holds the outputs of branches a redrive keeps
        (not run again), ``prefix`` where a finished branch's output is kept."""
        branches: list[dict[str, Any]] = state["Branches"]
        kept = done or {}
        self.emit(flow, "ParallelStateStarted", None)
        abort = threading.Event()
        flows = [flow.child(abort) for _ in branches]

        def branch(index: int) -> Any:
            if index in kept:
                return kept[index]
            out = self.run_machine(branches[index], data, flows[index], language=lang)
            self.keep(prefix, index, out)
            return out

        with ThreadPoolExecutor(max_workers=len(branches), thread_name_prefix="wf-branch") as pool:
            futures = [pool.submit(branch, i) for i in range(len(branches))]
            failure = _first_failure(futures, abort)
        flow.last = max(f.last for f in flows)
        if failure is not None:
            self.emit(flow, "ParallelStateFailed", None)
            raise failure
        self.emit(flow, "ParallelStateSucceeded", None)
        return [f.result() for f in futures]

    # -- Map --
    def map_items(self, state: dict[str, Any], effective: Any, ctx: P.Context, lang: str,
                  flow: _Flow) -> list[Any]:
        """The items a Map iterates over (``ItemsPath`` / ``Items``)."""
        if lang == JSONATA:
            states = {"input": effective, "context": dict(ctx)}
            items_field = state.get("Items")
            if items_field is None:
                if not isinstance(effective, list):
                    raise StatesError(E.QUERY_EVALUATION_ERROR, "Map state input must be an array but was: "
                                      f"{_dumps(effective)}")
                return effective
            if isinstance(items_field, list):
                items: Any = J.template(items_field, states, flow.scope.view(), "Items")
                return list(items)
            return list(J.evaluate_as(items_field, states, flow.scope.view(), "Items", "array"))
        items_path = state.get("ItemsPath", "$")
        try:
            items = P.get_path(effective, items_path, ctx)
        except P.PathError as exc:
            raise StatesError(E.RUNTIME, f"Invalid path '{items_path}' : {exc}") from exc
        if not isinstance(items, list):
            raise StatesError(E.RUNTIME, f"Map state input must be an array but was: {_dumps(items)}")
        return items

    def run_map(
        self, name: str, state: dict[str, Any], effective: Any, flow: _Flow, ctx: P.Context, lang: str,
        prefix: str | None = None, done: dict[int, Any] | None = None,
    ) -> list[Any]:
        """Run the iterations on a pool of ``MaxConcurrency`` threads; ``done`` holds the
        outputs of iterations a redrive keeps (not run again), ``prefix`` where a finished
        iteration's output is kept."""
        kept = done or {}
        items = self.map_items(state, effective, ctx, lang, flow)
        processor: dict[str, Any] = state.get("ItemProcessor", state.get("Iterator"))  # type: ignore[assignment]
        selector = state.get("ItemSelector", state.get("Parameters"))
        limit = _map_number(state, "MaxConcurrency", effective, ctx, lang, flow, 0)
        workers = int(limit) if limit and limit > 0 else self.max_workers
        tolerated_count = _map_number(state, "ToleratedFailureCount", effective, ctx, lang, flow, None)
        tolerated_pct = _map_number(state, "ToleratedFailurePercentage", effective, ctx, lang, flow, None)
        tolerant = tolerated_count is not None or tolerated_pct is not None
        inputs = []
        for index, item in enumerate(items):
            if selector is None:
                inputs.append(item)
                continue
            item_ctx = P.Context(dict(ctx, Map={"Item": {"Index": index, "Value": item}}), ctx.variables)
            if lang == JSONATA:
                states = {"input": effective, "context": dict(item_ctx)}
                inputs.append(J.template(selector, states, flow.scope.view(), "ItemSelector"))
            else:
                inputs.append(P.apply_template(selector, effective, item_ctx))
        self.emit(flow, "MapStateStarted", {"length": len(items)})
        abort = threading.Event()
        flows = [flow.child(abort) for _ in items]
        failed: list[int] = []
        fail_lock = threading.Lock()
        total = len(items)

        def exceeded(n_failed: int) -> bool:
            if tolerated_count is not None and n_failed > tolerated_count:
                return True
            return tolerated_pct is not None and total > 0 and n_failed * 100.0 / total > tolerated_pct

        def iteration(index: int) -> Any:
            if index in kept:
                return kept[index]
            f = flows[index]
            if f.aborted():
                raise _Aborted()
            self.emit(f, "MapIterationStarted", {"name": name, "index": index})
            try:
                out = self.run_machine(processor, inputs[index], f, language=lang)
            except StatesError as err:
                self.emit(f, "MapIterationFailed", {"name": name, "index": index})
                if not tolerant:
                    raise
                with fail_lock:
                    failed.append(index)
                    over = exceeded(len(failed))
                if over:
                    raise StatesError(
                        E.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                        f"The number of failed items ({len(failed)}) exceeds the tolerated "
                        f"failure threshold of the Map state '{name}'",
                    ) from err
                return {"Error": err.error, "Cause": err.cause or ""}
            except _Aborted:
                self.emit(f, "MapIterationAborted", {"name": name, "index": index})
                raise
            self.emit(f, "MapIterationSucceeded", {"name": name, "index": index})
            self.keep(prefix, index, out)
            return out

        futures: list[Future[Any]] = []
        if items:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wf-map") as pool:
                futures = [pool.submit(iteration, i) for i in range(total)]
                failure = _first_failure(futures, abort)
        else:
            failure = None
        if flows:
            flow.last = max(f.last for f in flows)
        if failure is not None:
            self.emit(flow, "MapStateFailed", None)
            raise failure
        self.emit(flow, "MapStateSucceeded", None)
        return [f.result() for f in futures]


class _FailState(StatesError):
    """Raised by a Fail state: never caught or retried within its own machine. A Fail state
    without an ``Error`` fails with none (``absent``), as on Step Functions."""

    def __init__(self, error: str | None, cause: str | None) -> None:
        super().__init__(error or "", cause)
        self.absent = error is None


def _find_catcher(state: dict[str, Any], error: str) -> dict[str, Any] | None:
    if state["Type"] not in ("Task", "Parallel", "Map"):
        return None
    for catcher in state.get("Catch", []):
        if error_matches(error, catcher["ErrorEquals"]):
            return dict(catcher)
    return None


def _first_failure(futures: list[Future[Any]], abort: threading.Event) -> BaseException | None:
    """Wait for all futures; on the first failure, set ``abort`` so the others stop at their
    next transition, and return that failure (an execution timeout wins)."""
    pending = set(futures)
    first: BaseException | None = None
    while pending:
        done, pending = wait(pending, return_when=FIRST_EXCEPTION)
        for fut in futures:
            if fut not in done:
                continue
            exc = fut.exception()
            if exc is None or isinstance(exc, _Aborted):
                continue
            if first is None or isinstance(exc, _ExecutionTimedOut):
                first = exc
            abort.set()
    return first


class _TaskTimedOut(Exception):
    pass


def _call_with_timeout(fn: TaskFn, payload: Any, timeout: float | None) -> Any:
    if timeout is None:
        return fn(payload)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(payload)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name="wf-task", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _TaskTimedOut()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _resource_parts(resource: str) -> tuple[str, str]:
    m = re.match(r"^arn:aws[\w-]*:states:::([^:]+):(.+)$", resource)
    if m:
        return m.group(1), m.group(2)
    m = re.match(r"^arn:aws[\w-]*:lambda:[^:]*:[^:]*:function:(.+)$", resource)
    if m:
        return "lambda", m.group(1)
    return "local", resource


def retry_delay(retrier: dict[str, Any], attempt: int) -> float:
    """The delay before retry number ``attempt + 1`` under ``retrier``:
    ``IntervalSeconds * BackoffRate ** attempt``, capped by ``MaxDelaySeconds``, and with
    ``JitterStrategy: FULL`` a uniform random value between 0 and that."""
    interval = float(retrier.get("IntervalSeconds", 1))
    rate = float(retrier.get("BackoffRate", 2.0))
    delay = interval * rate**attempt
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, float(retrier["MaxDelaySeconds"]))
    if retrier.get("JitterStrategy", "NONE") == "FULL":
        delay = random.uniform(0, delay)
    return delay


def _shown(value: Any) -> str:
    """A value as Step Functions quotes it in a cause: a string as is, anything else as JSON."""
    return value if isinstance(value, str) else _dumps(value)


def _path_value(state: dict[str, Any], key: str, data: Any, ctx: Any) -> Any:
    path = state[key]
    try:
        return P.get_path(data, path, ctx)
    except P.PathError as exc:
        raise StatesError(E.RUNTIME, f"Invalid path '{path}' : {exc}") from exc


def _map_number(state: dict[str, Any], key: str, data: Any, ctx: P.Context, lang: str, flow: _Flow,
                default: float | None) -> float | None:
    """``MaxConcurrency`` / ``ToleratedFailureCount`` / ``ToleratedFailurePercentage``: a number,
    its ``…Path`` (JSONPath) or a JSONata expression, checked as Step Functions checks it."""
    fraction = key == "ToleratedFailurePercentage"
    if lang == JSONATA and J.is_expression(state.get(key)):
        value = J.evaluate(state[key], {"input": data, "context": dict(ctx)}, flow.scope.view(), key)
        number = None if isinstance(value, str) else _as_number(value, fraction)
        if number is None or number < 0:
            raise StatesError(E.QUERY_EVALUATION_ERROR, f"The {key} field must resolve to a non-negative "
                              f"{'number' if fraction else 'integer'}, but was: {_shown(value)}")
        return _in_range(key, number, E.QUERY_EVALUATION_ERROR)
    if f"{key}Path" in state:
        path = state[f"{key}Path"]
        value = _path_value(state, f"{key}Path", data, ctx)
        number = _as_number(value, fraction)
        if number is None or (key == "MaxConcurrency" and number < 0):
            raise StatesError(E.RUNTIME, f"The {key}Path field refers to value \"{_shown(value)}\" which is "
                              f"not a valid {'float' if fraction else 'integer'}: {path}")
        return _in_range(key, number, E.RUNTIME)
    if key in state:
        return float(state[key])
    return default


def _in_range(key: str, number: float, error: str) -> float:
    """Step Functions' bounds of the tolerated failures (causes as it words them)."""
    if key == "ToleratedFailureCount" and number < 0:
        raise StatesError(error, "ToleratedFailureCount cannot be negative.")
    if key == "ToleratedFailurePercentage" and not 0 <= number <= 100:
        raise StatesError(error, "ToleratedFailurePercentage must be between 0 and 100.")
    return number


def _as_number(value: Any, fraction: bool = False) -> float | None:
    """An integer (``fraction``: any number) read from a ``…Path`` field, where Step Functions
    also accepts its decimal text ("3"); None when it is not one."""
    if isinstance(value, str):
        try:
            value = float(value.strip()) if fraction else int(value.strip())
        except ValueError:
            return None
    if not _is_number(value) or (not fraction and not float(value).is_integer()):
        return None
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timeout_seconds(state: dict[str, Any], raw: Any, ctx: P.Context, lang: str) -> float | None:
    if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
        return None
    if lang == JSONATA and J.is_expression(state.get("TimeoutSeconds")):
        value = J.evaluate_as(state["TimeoutSeconds"], {"input": raw, "context": dict(ctx)}, ctx.variables,
                              "TimeoutSeconds", "number")
    elif "TimeoutSecondsPath" in state:
        value = _path_value(state, "TimeoutSecondsPath", raw, ctx)
    else:
        value = state["TimeoutSeconds"]
    if not _is_number(value) or not float(value).is_integer() or value <= 0:
        raise StatesError(E.RUNTIME,
                          f"The TimeoutSeconds must be a positive integer, but was: {_shown(value)}")
    return float(value)


def _wait_seconds(state: dict[str, Any], data: Any, ctx: Any) -> float:
    """A JSONPath Wait's delay, with Step Functions' causes for a bad ``…Path`` value."""
    if "Seconds" in state:
        return float(state["Seconds"])
    if "SecondsPath" in state:
        path = state["SecondsPath"]
        value = _path_value(state, "SecondsPath", data, ctx)
        if not _is_number(value) or not float(value).is_integer():
            raise StatesError(E.RUNTIME, f"The SecondsPath parameter cannot be parsed as a long value: "
                              f"{path} == {_shown(value)}")
        if value < 0:
            raise StatesError(E.RUNTIME, f"The SecondsPath parameter references a negative value: "
                              f"{path} == {_shown(value)}")
        return float(value)
    if "TimestampPath" in state:
        path = state["TimestampPath"]
        text = _path_value(state, "TimestampPath", data, ctx)
        when = parse_timestamp(text)
        if when is None:
            raise StatesError(E.RUNTIME, "The TimestampPath parameter does not reference a valid ISO-8601 "
                              f"extended offset date-time format string: {path} == {_shown(text)}")
    else:
        when = parse_timestamp(state["Timestamp"])
        if when is None:
            raise StatesError(E.RUNTIME, f"The Timestamp {state['Timestamp']!r} is not an RFC 3339 timestamp")
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _jsonata_wait_seconds(state: dict[str, Any], states: dict[str, Any], variables: dict[str, Any]) -> float:
    """A JSONata Wait's delay: ``Seconds`` (a number or an expression) or ``Timestamp``."""
    if "Seconds" in state:
        value = state["Seconds"]
        if J.is_expression(value):
            value = J.evaluate_as(value, states, variables, "Seconds", "number")
        if not _is_number(value) or not float(value).is_integer() or value < 0:
            raise StatesError(E.QUERY_EVALUATION_ERROR,
                              f"The Seconds field must be a non-negative integer, but was: {_shown(value)}")
        return float(value)
    text = state["Timestamp"]
    if J.is_expression(text):
        text = J.evaluate_as(text, states, variables, "Timestamp", "string")
    when = parse_timestamp(text)
    if when is None:
        raise StatesError(E.QUERY_EVALUATION_ERROR, "The Timestamp field cannot be parsed as an ISO-8601 "
                          f"extended offset date-time format string: {text}")
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _fail_field(state: dict[str, Any], key: str, raw: Any, ctx: Any) -> str | None:
    """A JSONPath Fail state's ``Error`` / ``Cause`` (literal, ``…Path`` or intrinsic); None when
    the state has neither (Step Functions then records none)."""
    if f"{key}Path" in state:
        expr = state[f"{key}Path"]
        if expr.startswith("$"):
            try:
                value = P.get_path(raw, expr, ctx)
            except P.PathError as exc:
                raise StatesError(E.RUNTIME, f"The JSONPath '{expr}' specified for the field '{key}Path' "
                                  f"could not be found in the input '{_dumps(raw)}'") from exc
        else:
            value = P.evaluate_value(expr, raw, ctx)
        return value if isinstance(value, str) else _dumps(value)
    value = state.get(key)
    return None if value is None else str(value)


def _jsonata_text(state: dict[str, Any], key: str, states: dict[str, Any],
                  variables: dict[str, Any]) -> str | None:
    """A JSONata Fail state's ``Error`` / ``Cause``: a literal or an expression giving a string."""
    value = state.get(key)
    if value is None:
        return None
    if J.is_expression(value):
        return str(J.evaluate_as(value, states, variables, key, "string"))
    return str(value)


# ---- serialisation ----------------------------------------------------------------------------
def _event_to_json(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event, timestamp=_iso(event["timestamp"]))


def _event_from_json(data: dict[str, Any]) -> dict[str, Any]:
    return dict(data, timestamp=_parse_dt(data["timestamp"]))


def _parse_dt(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _execution_to_json(ex: Execution, **extra: Any) -> dict[str, Any]:
    data = {
        "executionArn": ex.execution_arn,
        "stateMachineArn": ex.state_machine_arn,
        "name": ex.name,
        "status": ex.status,
        "input": ex.input,
        "output": ex.output,
        "error": ex.error,
        "cause": ex.cause,
        "startDate": _iso(ex.start_date),
        "stopDate": _iso(ex.stop_date) if ex.stop_date else None,
        "definition": ex.definition,
        "redriveCount": ex.redrive_count,
        "redriveDate": _iso(ex.redrive_date) if ex.redrive_date else None,
    }
    data.update(extra)
    return data


def _execution_from_json(data: dict[str, Any], history: list[dict[str, Any]]) -> Execution:
    return Execution(
        execution_arn=data["executionArn"],
        name=data["name"],
        status=data["status"],
        output=data.get("output"),
        error=data.get("error"),
        cause=data.get("cause"),
        start_date=_parse_dt(data["startDate"]) or datetime.now(UTC),
        stop_date=_parse_dt(data.get("stopDate")),
        history=history,
        input=data.get("input"),
        state_machine_arn=data.get("stateMachineArn", ""),
        definition=data.get("definition") or {},
        redrive_count=int(data.get("redriveCount") or 0),
        redrive_date=_parse_dt(data.get("redriveDate")),
    )


# ---- entry points -----------------------------------------------------------------------------
def run_definition(
    definition: dict[str, Any] | str,
    input: Any = None,
    *,
    tasks: TaskRegistry | None = None,
    name: str | None = None,
    store: StateStore | None = None,
    max_workers: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    execution_type: str = "STANDARD",
) -> Execution:
    """Run a state machine to completion and return the execution (see the package doc).
    ``execution_type`` EXPRESS gives the execution an express ARN and context object."""
    machine = load_definition(definition)
    exec_name = name or str(uuid.uuid4())
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,80}", exec_name):
        raise UsageError(f"invalid execution name {exec_name!r}")
    if execution_type not in ("STANDARD", "EXPRESS"):
        raise UsageError(f"execution_type must be STANDARD or EXPRESS, not {execution_type!r}")
    if len(_dumps(input).encode()) > MAX_PAYLOAD_BYTES:
        raise UsageError(f"the execution input is larger than {MAX_PAYLOAD_BYTES} bytes "
                         "(Step Functions' limit)")
    sm_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}"
    if execution_type == "EXPRESS":
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:express:{STATE_MACHINE_NAME}:{exec_name}:{uuid.uuid4()}"
    else:
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STATE_MACHINE_NAME}:{exec_name}"
    execution = Execution(
        execution_arn=arn,
        name=exec_name,
        status="RUNNING",
        input=input,
        state_machine_arn=sm_arn,
        definition=machine,
    )
    if store is not None and store.get(EXECUTIONS_TABLE, execution.execution_arn) is not None:
        raise UsageError(f"an execution named {exec_name!r} already exists")
    timeout = machine.get("TimeoutSeconds")
    deadline = time.monotonic() + float(timeout) if timeout else None
    run = _Run(execution, tasks or TaskRegistry(), store, max_workers, sleep, deadline)
    run.save()
    flow = _Flow(0)
    run.emit(
        flow,
        "ExecutionStarted",
        {
            "input": _dumps(input),
            "inputDetails": {"truncated": False},
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/lakeline-local",
        },
    )
    _finish(run, flow, lambda: run.run_machine(machine, input, flow, top=True))
    return execution


def _finish(run: _Run, flow: _Flow, body: Callable[[], Any]) -> None:
    ex = run.ex
    try:
        ex.output = body()
        ex.status = "SUCCEEDED"
        ex.stop_date = datetime.now(UTC)
        run.emit(
            flow, "ExecutionSucceeded", {"output": _dumps(ex.output), "outputDetails": {"truncated": False}}
        )
    except _ExecutionTimedOut:
        # Step Functions records no error or cause for the machine's own TimeoutSeconds
        ex.status, ex.error, ex.cause = "TIMED_OUT", None, None
        ex.stop_date = datetime.now(UTC)
        run.emit(flow, "ExecutionTimedOut", {})
    except StatesError as err:
        error = None if isinstance(err, _FailState) and err.absent else err.error
        ex.status, ex.error, ex.cause = "FAILED", error, err.cause
        ex.stop_date = datetime.now(UTC)
        details = {k: v for k, v in (("error", error), ("cause", err.cause)) if v is not None}
        run.emit(flow, "ExecutionFailed", details)
    except Exception as exc:
        ex.status, ex.error, ex.cause = "FAILED", E.RUNTIME, f"{type(exc).__name__}: {exc}"
        ex.stop_date = datetime.now(UTC)
        run.emit(flow, "ExecutionFailed", {"error": ex.error, "cause": ex.cause})
    run.save()


def load_execution(store: StateStore, arn: str) -> Execution | None:
    """A persisted execution with its history, or None."""
    item = store.get(EXECUTIONS_TABLE, arn)
    if item is None:
        return None
    history = [_event_from_json(i.data) for i in store.query(HISTORY_TABLE, f"{arn}#")]
    return _execution_from_json(item.data, history)


def list_executions(store: StateStore, limit: int = 100) -> list[Execution]:
    """Persisted executions, newest first (histories not loaded)."""
    items = store.query(EXECUTIONS_TABLE)
    items.sort(key=lambda i: i.data.get("startDate") or "", reverse=True)
    return [_execution_from_json(i.data, []) for i in items[:limit]]


def _stored(store: StateStore, arn: str) -> tuple[Any, Execution]:
    """The stored item and execution of ``arn``; :class:`UsageError` if there is none."""
    item = store.get(EXECUTIONS_TABLE, arn)
    ex = load_execution(store, arn) if item is not None else None
    if item is None or ex is None:
        raise UsageError(f"no execution {arn!r}")
    return item, ex


def resume_or_fail(store: StateStore, arn: str, reason: str) -> Execution:
    """Mark a RUNNING execution whose process died as FAILED (``States.Runtime``, cause
    ``reason``); an execution that already ended is returned unchanged."""
    item, ex = _stored(store, arn)
    if ex.status != "RUNNING":
        return ex
    ex.status, ex.error, ex.cause = "FAILED", E.RUNTIME, reason
    ex.stop_date = datetime.now(UTC)
    last = max((e["id"] for e in ex.history), default=0)
    event = {
        "id": last + 1,
        "previousEventId": last,
        "timestamp": ex.stop_date,
        "type": "ExecutionFailed",
        "executionFailedEventDetails": {"error": E.RUNTIME, "cause": reason},
    }
    ex.history.append(event)
    store.put(HISTORY_TABLE, f"{arn}#{last + 1:08d}", _event_to_json(event))
    where = {k: item.data[k] for k in ("currentState", "currentInput", "currentVariables")
             if k in item.data}  # for a redrive
    store.put(EXECUTIONS_TABLE, arn, _execution_to_json(ex, **where))
    return ex


def resume_execution(
    store: StateStore,
    arn: str,
    *,
    tasks: TaskRegistry | None = None,
    max_workers: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> Execution:
    """Re-run a RUNNING execution whose process died from the last top-level state it
    entered, with that state's recorded input; the history continues where it stopped. Like a
    redrive, a Map or Parallel state it stopped in reruns only what had not finished."""
    item, ex = _stored(store, arn)
    if ex.status != "RUNNING":
        return ex
    state = item.data.get("currentState")
    if state is None:
        state = ex.definition["StartAt"]
        data = ex.input
    else:
        data = item.data.get("currentInput")
    run, flow = _restart(ex, store, tasks, max_workers, sleep, state, item.data.get("currentVariables"))
    _finish(run, flow, lambda: run.run_machine(ex.definition, data, flow, top=True, start_at=state))
    return ex


def _restart(ex: Execution, store: StateStore, tasks: TaskRegistry | None, max_workers: int,
             sleep: Callable[[float], None], state: str,
             variables: dict[str, Any] | None) -> tuple[_Run, _Flow]:
    """A run continuing ``ex``'s history from top-level ``state`` (a resume or a redrive) with the
    variables as they were when that state was entered: its timeout starts again, event ids go
    on, and a Map/Parallel there reruns only what had not finished."""
    timeout = ex.definition.get("TimeoutSeconds")
    deadline = time.monotonic() + float(timeout) if timeout else None
    run = _Run(ex, tasks or TaskRegistry(), store, max_workers, sleep, deadline)
    run.next_id = max((e["id"] for e in ex.history), default=0) + 1
    run.redriving = state
    run.current_vars = dict(variables or {})
    return run, _Flow(run.next_id - 1, scope=Scope(variables))


def redrive_execution(
    store: StateStore,
    arn: str,
    *,
    tasks: TaskRegistry | None = None,
    max_workers: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> Execution:
    """Step Functions' RedriveExecution: restart a FAILED, TIMED_OUT or ABORTED execution from
    the top-level state it did not finish, with that state's input and the same ARN and input.
    Earlier states are not run again; a Map or Parallel state runs only its iterations and
    branches that failed or were aborted (the others' kept outputs take their place). The
    history continues with ``ExecutionRedriven`` (``redriveCount``). :class:`UsageError` when
    the execution is not redrivable (running or succeeded)."""
    item, ex = _stored(store, arn)
    if ex.status not in REDRIVABLE:
        raise UsageError(f"execution {ex.name} is {ex.status} and cannot be redriven: only "
                         f"{', '.join(REDRIVABLE)} executions can", code="EXECUTION_NOT_REDRIVABLE")
    state = item.data.get("currentState")
    data = item.data.get("currentInput") if state is not None else ex.input
    state = state or ex.definition["StartAt"]
    ex.status, ex.output, ex.error, ex.cause, ex.stop_date = "RUNNING", None, None, None, None
    ex.redrive_count += 1
    ex.redrive_date = datetime.now(UTC)
    run, flow = _restart(ex, store, tasks, max_workers, sleep, state, item.data.get("currentVariables"))
    run.current = (state, data)
    run.emit(flow, "ExecutionRedriven", {"redriveCount": ex.redrive_count})
    run.save()
    _finish(run, flow, lambda: run.run_machine(ex.definition, data, flow, top=True, start_at=state))
    return ex


def resolve_execution(store: StateStore, ref: str) -> str:
    """The ARN of the stored execution ``ref`` names: its ARN, its name, or a unique prefix of
    its name (a short id). :class:`UsageError` (exit 2) when none or several match, listing
    the candidates."""
    if store.get(EXECUTIONS_TABLE, ref) is not None:
        return ref
    arns = [i.key for i in store.query(EXECUTIONS_TABLE)]
    names = {arn: arn.rsplit(":", 1)[-1] for arn in arns}
    exact = [arn for arn, name in names.items() if name == ref]
    found = exact or [arn for arn, name in names.items()
                      if ref and (name.startswith(ref) or arn.startswith(ref))]
    if len(found) == 1:
        return found[0]
    if not found:
        recent = ", ".join(e.name for e in list_executions(store, 10)) or "none"
        raise UsageError(f"no execution {ref!r} (an execution ARN, name or unique name prefix); "
                         f"recent executions: {recent}", code="EXECUTION_NOT_FOUND")
    shown = sorted(names[arn] for arn in found)
    more = f" and {len(shown) - 20} more" if len(shown) > 20 else ""
    raise UsageError(f"{ref!r} matches {len(found)} executions: {', '.join(shown[:20])}{more}; "
                     "give more of the name", code="AMBIGUOUS_EXECUTION")
