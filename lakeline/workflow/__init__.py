"""Workflows: Amazon States Language (ASL) state machines that run locally and deploy
unchanged to AWS Step Functions.

API contract (implemented in :mod:`lakeline.workflow.engine`):

- ``run_definition(definition: dict | str, input: Any = None, *, tasks: TaskRegistry | None = None,
  name: str | None = None, store: StateStore | None = None, max_workers: int = 8,
  sleep: Callable[[float], None] = time.sleep, execution_type: str = "STANDARD") -> Execution``
  runs a state machine (JSONPath or JSONata, with variables) to completion and returns the
  execution.
- ``Execution``: ``execution_arn``, ``name``, ``status`` (``SUCCEEDED | FAILED | TIMED_OUT |
  ABORTED | RUNNING``), ``output`` (parsed JSON or None), ``error``, ``cause``,
  ``start_date``, ``stop_date``, ``history: list[dict]`` (events shaped like Step Functions'
  ``GetExecutionHistory``: ``{id, previousEventId, timestamp, type, <type>EventDetails}``).
- ``TaskRegistry``: maps a Task ``Resource`` to a Python callable ``fn(payload: Any) -> Any``:
  ``register(name, fn)``; resources ``arn:aws:states:::lambda:invoke`` (``Parameters.FunctionName``,
  result wrapped as ``{"Payload": …, "StatusCode": 200}``) and plain function ARNs
  ``arn:aws:lambda:<region>:<acct>:function:<name>`` resolve by function name. A callable
  raising ``TaskError(error, cause)`` fails the task with that error name; any other
  exception fails it with the exception's class name (like Lambda's ``errorType``).
- Errors raised for bad definitions: :class:`lakeline.errors.UsageError` naming the state.
"""
