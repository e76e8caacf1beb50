"""Load-time checks of a state machine definition: structure, and which fields each query
language allows where (Step Functions' rules).

A definition is JSONPath unless its top level or a state says ``"QueryLanguage": "JSONata"``; a
state inherits the language of the machine around it (Map item processors and Parallel
branches included). Under a JSONata top level no state may be JSONPath. JSONata states use
``Arguments``/``Output``/``Items``/``Condition`` and ``{% … %}`` expressions; JSONPath states use
``InputPath``/``Parameters``/``ResultSelector``/``ResultPath``/``OutputPath`` and the ``…Path``
fields; both may ``Assign`` variables. A field of the other language is refused here, naming the
state and the field — never run as something else. A JSONPath reference to a variable that no
state the reference can see assigns (``$name``) is refused the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from lakeline.errors import UsageError
from lakeline.workflow import errors as E
from lakeline.workflow import paths as P
from lakeline.workflow import variables as V
from lakeline.workflow.choice import OPERATORS, parse_timestamp
from lakeline.workflow.intrinsics import is_intrinsic
from lakeline.workflow.jsonata_expr import is_expression

JSONPATH, JSONATA = "JSONPath", "JSONata"
LANGUAGES = (JSONPATH, JSONATA)
TYPES = frozenset({"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"})
_NEEDS_TRANSITION = frozenset({"Task", "Pass", "Wait", "Parallel", "Map"})
_RETRYING = frozenset({"Task", "Parallel", "Map"})
#: fields only a JSONPath state may have
JSONPATH_ONLY = ("InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "ItemsPath",
                 "Result", "SecondsPath", "TimestampPath", "ErrorPath", "CausePath", "MaxConcurrencyPath",
                 "ToleratedFailureCountPath", "ToleratedFailurePercentagePath", "TimeoutSecondsPath",
                 "HeartbeatSecondsPath")
#: distributed Map fields the local engine does not run (refused rather than ignored)
UNSUPPORTED_MAP_FIELDS = ("ItemReader", "ItemBatcher", "ResultWriter")
#: fields only a JSONata state may have
JSONATA_ONLY = ("Arguments", "Output", "Items")
#: fields whose value may be a whole ``{% … %}`` expression in a JSONata state
#: JSONPath fields that cannot read a variable
_NOT_READING = ("ResultPath",)
_JSONATA_SCALARS = ("Seconds", "Timestamp", "Error", "Cause", "MaxConcurrency", "ToleratedFailureCount",
                    "ToleratedFailurePercentage", "TimeoutSeconds", "HeartbeatSeconds")


def load_definition(definition: dict[str, Any] | str) -> dict[str, Any]:
    """The definition parsed and checked (:class:`UsageError` naming the state and field)."""
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except ValueError as exc:
            raise UsageError(f"state machine definition is not valid JSON: {exc}") from exc
    if not isinstance(definition, dict):
        raise UsageError("state machine definition must be a JSON object")
    validate_definition(definition)
    return definition


def machine_language(machine: dict[str, Any], inherited: str = JSONPATH) -> str:
    """The query language of a machine (or branch / item processor) given its parent's."""
    return str(machine.get("QueryLanguage", inherited))


def state_language(state: dict[str, Any], machine: str) -> str:
    """The query language of a state in a machine of language ``machine``."""
    return str(state.get("QueryLanguage", machine))


def validate_definition(definition: dict[str, Any], where: str = "", language: str = JSONPATH,
                        visible: frozenset[str] = frozenset()) -> None:
    """Raise :class:`UsageError` (naming the state and field) if the definition is invalid.
    ``visible``: the variables the enclosing scopes assign (for a branch or item processor)."""
    prefix = f"{where}: " if where else ""
    lang = machine_language(definition, language)
    if lang not in LANGUAGES:
        raise UsageError(f"{prefix}QueryLanguage must be JSONPath or JSONata, not {lang!r}")
    if language == JSONATA and lang == JSONPATH and where:
        raise UsageError(f"{prefix}QueryLanguage: a JSONPath machine cannot be nested in a JSONata one")
    states = definition.get("States")
    if not isinstance(states, dict) or not states:
        raise UsageError(f"{prefix}'States' must be a non-empty object")
    start = definition.get("StartAt")
    if start not in states:
        raise UsageError(f"{prefix}StartAt {start!r} is not a state")
    timeout = definition.get("TimeoutSeconds")
    if timeout is not None and not _integer_at_least(timeout, 1):
        raise UsageError(f"{prefix}TimeoutSeconds must be a positive integer, not {timeout!r}")
    assigned = visible | _assigned_names(states)
    for name, state in states.items():
        _validate_state(name, state, states, prefix, lang, assigned)


def _assigned_names(states: dict[str, Any]) -> frozenset[str]:
    """The variables some state of this machine (not its branches) assigns."""
    names: set[str] = set()
    for state in states.values():
        if not isinstance(state, dict):
            continue
        blocks = [state.get("Assign")]
        blocks += [c.get("Assign") for c in state.get("Catch") or [] if isinstance(c, dict)]
        blocks += [c.get("Assign") for c in state.get("Choices") or [] if isinstance(c, dict)]
        for block in blocks:
            if isinstance(block, dict):
                names.update(k[:-2] if k.endswith(".$") else k for k in block)
    return frozenset(names)


def _validate_state(name: str, state: Any, states: dict[str, Any], prefix: str, machine_lang: str,
                    assigned: frozenset[str]) -> None:
    def bad(msg: str) -> UsageError:
        return UsageError(f"{prefix}state {name!r}: {msg}")

    if not isinstance(state, dict):
        raise bad("must be an object")
    typ = state.get("Type")
    if typ not in TYPES:
        raise bad(f"unknown Type {typ!r}")
    if len(name) > 80:
        raise bad("name is longer than 80 characters")
    lang = state_language(state, machine_lang)
    if lang not in LANGUAGES:
        raise bad(f"QueryLanguage must be JSONPath or JSONata, not {lang!r}")
    if machine_lang == JSONATA and lang == JSONPATH:
        raise bad("QueryLanguage: a state cannot be JSONPath when the state machine is JSONata")
    _check_language_fields(state, lang, bad)
    if typ in _NEEDS_TRANSITION:
        has_next, has_end = "Next" in state, state.get("End") is True
        if has_next == has_end:
            raise bad("needs exactly one of Next or End: true")
    elif "Next" in state or "End" in state:
        raise bad(f"a {typ} state cannot have Next or End")
    if "Next" in state and state["Next"] not in states:
        raise bad(f"Next {state['Next']!r} is not a state")
    if "Assign" in state:
        if typ in ("Succeed", "Fail"):
            raise bad(f"a {typ} state cannot have Assign")
        _check_assign(state["Assign"], lang, "Assign", bad)
    if "Output" in state and typ == "Fail":
        raise bad("a Fail state cannot have Output")
    if lang == JSONPATH:
        _check_paths(state, bad)
        for field, expr in _jsonpath_references(state):
            ref = V.split_reference(expr)
            if ref is not None and ref[0] not in assigned:
                raise bad(f"{field}: the variable '${ref[0]}' is not assigned by any state before it")
    for key, low in (("TimeoutSeconds", 1), ("HeartbeatSeconds", 1), ("Seconds", 0), ("MaxConcurrency", 0),
                     ("ToleratedFailureCount", 0)):
        val = state.get(key)
        if val is not None and not is_expression(val) and not _integer_at_least(val, low):
            raise bad(f"{key} must be an integer of at least {low}, not {val!r}")
    pct = state.get("ToleratedFailurePercentage")
    if pct is not None and not is_expression(pct) and (
            isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100):
        raise bad(f"ToleratedFailurePercentage must be a number between 0 and 100, not {pct!r}")
    if typ == "Task" and not isinstance(state.get("Resource"), str):
        raise bad("a Task needs a Resource")
    if typ == "Task" and str(state["Resource"]).endswith(".waitForTaskToken"):
        raise bad("Resource: .waitForTaskToken callbacks are not supported by the local engine")
    if typ == "Wait":
        given = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in state]
        if len(given) != 1:
            raise bad("needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath")
        stamp = state.get("Timestamp")
        if stamp is not None and not is_expression(stamp) and parse_timestamp(stamp) is None:
            raise bad(f"Timestamp {stamp!r} is not an ISO-8601 extended offset date-time "
                      "(2016-03-14T01:59:00Z)")
    if typ == "Choice":
        _check_choice(state, states, lang, bad)
    _check_retry_catch(state, typ, states, lang, bad)
    if typ == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            raise bad("Branches must be a non-empty array")
        for k, branch in enumerate(branches):
            if not isinstance(branch, dict):
                raise bad(f"Branches[{k}] must be an object")
            validate_definition(branch, f"{prefix}state {name!r} branch {k}", lang, assigned)
    if typ == "Map":
        for key in UNSUPPORTED_MAP_FIELDS:
            if key in state:
                raise bad(f"{key}: a distributed Map's {key} (S3 items, batches, results) is not supported "
                          "by the local engine; give the items in the input (ItemsPath / Items)")
        proc = state.get("ItemProcessor", state.get("Iterator"))
        if not isinstance(proc, dict):
            raise bad("a Map needs an ItemProcessor (or Iterator)")
        if "Items" in state and not (isinstance(state["Items"], list) or is_expression(state["Items"])):
            raise bad("Items must be an array or a JSONata expression {% … %}")
        validate_definition(proc, f"{prefix}state {name!r} ItemProcessor", lang, assigned)
    if typ == "Fail" and lang == JSONPATH:
        for key in ("ErrorPath", "CausePath"):
            val = state.get(key)
            if val is not None and not (isinstance(val, str) and (val.startswith("$") or is_intrinsic(val))):
                raise bad(f"{key} must be a path or an intrinsic function")


def _integer_at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_language_fields(state: dict[str, Any], lang: str, bad: Callable[[str], UsageError]) -> None:
    wrong = JSONPATH_ONLY if lang == JSONATA else JSONATA_ONLY
    for key in wrong:
        if key in state:
            raise bad(f"{key} is a {JSONPATH if lang == JSONATA else JSONATA} field and this state is "
                      f"{lang} (set QueryLanguage, or use the {lang} field)")
    if lang == JSONPATH:
        for key in _JSONATA_SCALARS:
            if is_expression(state.get(key)):
                raise bad(f"{key}: a JSONata expression in a JSONPath state "
                          "(set \"QueryLanguage\": \"JSONata\")")
    else:
        for key in _JSONATA_SCALARS:
            val = state.get(key)
            if isinstance(val, str) and not is_expression(val) and key not in ("Timestamp", "Error", "Cause"):
                raise bad(f"{key} must be a number or a JSONata expression {{% … %}}")


def _check_assign(block: Any, lang: str, field: str, bad: Callable[[str], UsageError]) -> None:
    if not isinstance(block, dict):
        raise bad(f"{field} must be an object")
    for key in block:
        var = key[:-2] if lang == JSONPATH and key.endswith(".$") else key
        if not V.NAME.match(var):
            raise bad(f"{field}: {key!r} is not a valid variable name (letters, digits and _, not "
                      "starting with a digit)")
        if var in V.RESERVED:
            raise bad(f"{field}: the variable name {var!r} is reserved")


def _check_paths(state: dict[str, Any], bad: Callable[[str], UsageError]) -> None:
    for key in ("InputPath", "OutputPath", "ResultPath", "ItemsPath"):
        val = state.get(key)
        if isinstance(val, str):
            if V.split_reference(val) is not None and key != "ResultPath":
                continue  # a variable's value ($name.path), checked with the other references
            try:
                segs = P.parse_path(val)
            except P.PathError as exc:
                raise bad(f"{key}: {exc}") from exc
            if key in ("ResultPath", "ItemsPath") and not P.is_definite(segs):
                raise bad(f"{key} must be a reference path")
        elif val is not None:
            raise bad(f"{key} must be a string or null")


def _jsonpath_references(state: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every (field, path or intrinsic) of a JSONPath state that can read a variable."""
    for key, val in state.items():
        if key.endswith("Path") and isinstance(val, str) and key not in _NOT_READING:
            yield key, val
    for key in ("Parameters", "ItemSelector", "ResultSelector", "Assign"):
        yield from _template_references(state.get(key), key)
    for k, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict):
            yield from _template_references(catcher.get("Assign"), f"Catch[{k}]/Assign")
    for k, rule in enumerate(state.get("Choices") or []):
        if isinstance(rule, dict):
            yield from _rule_references(rule, f"Choices[{k}]")


def _rule_references(rule: dict[str, Any], field: str) -> Iterator[tuple[str, str]]:
    if isinstance(rule.get("Variable"), str):
        yield f"{field}/Variable", rule["Variable"]
    for key, val in rule.items():
        if key.endswith("Path") and isinstance(val, str):
            yield f"{field}/{key}", val
    for sub_key in ("And", "Or"):
        for k, sub in enumerate(rule.get(sub_key) or []):
            if isinstance(sub, dict):
                yield from _rule_references(sub, f"{field}/{sub_key}[{k}]")
    if isinstance(rule.get("Not"), dict):
        yield from _rule_references(rule["Not"], f"{field}/Not")
    yield from _template_references(rule.get("Assign"), f"{field}/Assign")


def _template_references(template: Any, field: str) -> Iterator[tuple[str, str]]:
    if isinstance(template, dict):
        for key, val in template.items():
            if key.endswith(".$") and isinstance(val, str):
                if is_intrinsic(val):
                    for arg in _intrinsic_references(val):
                        yield f"{field}/{key}", arg
                else:
                    yield f"{field}/{key}", val
            else:
                yield from _template_references(val, f"{field}/{key}")
    elif isinstance(template, list):
        for k, val in enumerate(template):
            yield from _template_references(val, f"{field}[{k}]")


def _intrinsic_references(expr: str) -> Iterator[str]:
    """The ``$name`` arguments of an intrinsic call (outside string literals)."""
    quoted = False
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == "\\" and quoted:
            i += 2
            continue
        if ch == "'":
            quoted = not quoted
        elif ch == "$" and not quoted:
            j = i + 1
            while j < len(expr) and expr[j] not in ",) ":
                j += 1
            yield expr[i:j]
            i = j
            continue
        i += 1


def _check_choice(state: dict[str, Any], states: dict[str, Any], lang: str,
                  bad: Callable[[str], UsageError]) -> None:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise bad("Choices must be a non-empty array")
    for k, rule in enumerate(choices):
        if not isinstance(rule, dict) or rule.get("Next") not in states:
            target = rule.get("Next") if isinstance(rule, dict) else rule
            raise bad(f"Choice rule Next {target!r} is not a state")
        if "Assign" in rule:
            _check_assign(rule["Assign"], lang, f"Choices[{k}]/Assign", bad)
        if lang == JSONATA:
            extra = [key for key in rule if key not in ("Condition", "Next", "Assign", "Output", "Comment")]
            if extra:
                raise bad(f"Choices[{k}]: {extra[0]} is a JSONPath field and this state is JSONata "
                          "(a rule is a Condition)")
            cond = rule.get("Condition")
            if not (isinstance(cond, bool) or is_expression(cond)):
                raise bad(f"Choices[{k}]/Condition must be true, false or a JSONata expression {{% … %}}")
        else:
            for key in ("Condition", "Output"):
                if key in rule:
                    raise bad(f"Choices[{k}]: {key} is a JSONata field and this state is JSONPath")
            _validate_rule(rule, bad)
    if "Default" in state and state["Default"] not in states:
        raise bad(f"Default {state['Default']!r} is not a state")


def _check_retry_catch(state: dict[str, Any], typ: str, states: dict[str, Any], lang: str,
                       bad: Callable[[str], UsageError]) -> None:
    for kind in ("Retry", "Catch"):
        entries = state.get(kind)
        if entries is None:
            continue
        if typ not in _RETRYING:
            raise bad(f"a {typ} state cannot have {kind}")
        if not isinstance(entries, list):
            raise bad(f"{kind} must be an array")
        for k, entry in enumerate(entries):
            errs = entry.get("ErrorEquals") if isinstance(entry, dict) else None
            if not isinstance(errs, list) or not errs:
                raise bad(f"{kind}[{k}] needs a non-empty ErrorEquals")
            if E.ALL in errs and (len(errs) != 1 or k != len(entries) - 1):
                raise bad(f"{kind}[{k}]: States.ALL must appear alone in the last entry")
            if kind == "Catch":
                if entry.get("Next") not in states:
                    raise bad(f"Catch[{k}] Next {entry.get('Next')!r} is not a state")
                if lang == JSONATA and "ResultPath" in entry:
                    raise bad(f"Catch[{k}]: ResultPath is a JSONPath field and this state is JSONata "
                              "(use Output)")
                if lang == JSONPATH and "Output" in entry:
                    raise bad(f"Catch[{k}]: Output is a JSONata field and this state is JSONPath "
                              "(use ResultPath)")
                if "Assign" in entry:
                    _check_assign(entry["Assign"], lang, f"Catch[{k}]/Assign", bad)
            if kind == "Retry" and entry.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
                raise bad(f"Retry[{k}] JitterStrategy must be FULL or NONE")


def _validate_rule(rule: dict[str, Any], bad: Callable[[str], UsageError], top: bool = True) -> None:
    if not top and "Next" in rule:
        raise bad("a nested Choice rule cannot have Next")
    if "And" in rule or "Or" in rule:
        subs = rule.get("And", rule.get("Or"))
        if not isinstance(subs, list) or not subs:
            raise bad("And/Or needs a non-empty array")
        for sub in subs:
            _validate_rule(sub, bad, top=False)
        return
    if "Not" in rule:
        if not isinstance(rule["Not"], dict):
            raise bad("Not needs an object")
        _validate_rule(rule["Not"], bad, top=False)
        return
    if not isinstance(rule.get("Variable"), str):
        raise bad(f"Choice rule needs a Variable: {rule}")
    ops = [k for k in rule if k in OPERATORS]
    if len(ops) != 1:
        raise bad(f"Choice rule needs exactly one comparison operator: {rule}")
