"""CEL validation rules of CRD schemas (`x-kubernetes-validations`), evaluated with cel-python
(`celpy`, a well-kept implementation of the CEL spec) as the apiextensions-apiserver evaluates
them with cel-go: each rule sees `self` (the value at its schema node) and, for transition
rules, `oldSelf` (the stored value, on update only); a rule that is false refuses the write with
its `message` (or `messageExpression`), `reason` and `fieldPath`, in Kubernetes' wording.

Kubernetes adds libraries of its own to CEL (strings, lists, regex, URLs, IPs, quantities,
optionals). The common string and list functions are provided here; a rule that uses what
celpy cannot compile or run is not enforced, and the write carries a warning saying so, so
that a CRD valid on Kubernetes is never refused here."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from mikro.api.validation import FieldError

Obj = dict[str, Any]
ROOT = "<nil>"  # the path Kubernetes prints for a rule at the schema's root
_OLD_SELF = re.compile(r"\boldSelf\b")
_MISSING = re.compile(r"no such member in mapping: '([^']*)'")
REASONS = {
    "FieldValueForbidden": ("Forbidden", "Forbidden: {}"),
    "FieldValueRequired": ("Required", "Required value: {}"),
    "FieldValueDuplicate": ("Duplicate", "Duplicate value: {}"),
}


# Python calls one request's rules may make, about a second of evaluation: cel-go prices rules
# by cost and refuses what exceeds its budget; celpy has no budget, and a rule nesting
# comprehensions over a long list would hold the API for minutes. Past it, the remaining
# rules are not enforced (a warning says so): never a refusal of what Kubernetes may accept.
BUDGET_CALLS = 400_000


class Skipped(Exception):
    """A rule mikro cannot evaluate (a library function celpy lacks): not enforced."""


class _OutOfBudget(BaseException):
    """Raised from the trace hook: a BaseException, so that celpy's handlers let it through."""


class _Budget:
    def __init__(self, calls: int) -> None:
        self.left = calls

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            self.left -= 1
            if self.left < 0:
                raise _OutOfBudget


def _extensions() -> dict[str, Any]:
    """The Kubernetes CEL library functions most rules use (strings and lists)."""
    from celpy import celtypes

    s, lst = celtypes.StringType, celtypes.ListType

    def index_of(text: Any, sub: Any, start: Any = 0) -> Any:
        return celtypes.IntType(str(text).find(str(sub), int(start)))

    def substring(text: Any, start: Any, end: Any = None) -> Any:
        return s(str(text)[int(start) : None if end is None else int(end)])

    def split(text: Any, sep: Any, limit: Any = -1) -> Any:
        limit = int(limit)
        if limit == 0:
            return lst([])
        return lst([s(p) for p in str(text).split(str(sep), limit - 1 if limit > 0 else -1)])

    def is_sorted(items: Any) -> Any:
        values = list(items)
        return celtypes.BoolType(all(a <= b for a, b in zip(values, values[1:], strict=False)))

    return {
        "lowerAscii": lambda t: s(str(t).lower()),
        "upperAscii": lambda t: s(str(t).upper()),
        "trim": lambda t: s(str(t).strip()),
        "replace": lambda t, a, b, n=-1: s(str(t).replace(str(a), str(b), int(n))),
        "split": split,
        "join": lambda items, sep="": s(str(sep).join(str(i) for i in items)),
        "indexOf": index_of,
        "lastIndexOf": lambda t, sub: celtypes.IntType(str(t).rfind(str(sub))),
        "substring": substring,
        "charAt": lambda t, i: s(str(t)[int(i) : int(i) + 1]),
        "isSorted": is_sorted,
        "sum": lambda items: sum(items, type(next(iter(items), celtypes.IntType(0)))(0)),
        "min": lambda items: min(items),
        "max": lambda items: max(items),
    }


@lru_cache(maxsize=1)
def _environment() -> Any:
    import celpy

    return celpy.Environment()  # builds its parser once: the costly part of compiling


@lru_cache(maxsize=512)
def _program(rule: str) -> Any:
    """The compiled rule; Skipped when celpy cannot parse it (cel-go may)."""
    import celpy

    env = _environment()
    try:
        return env.program(env.compile(rule), functions=_extensions())
    except celpy.CELParseError as exc:
        raise Skipped(f"cannot be compiled by mikro: {str(exc).splitlines()[0]}") from None


def compiles(rule: str) -> bool:
    try:
        _program(rule)
    except Skipped:
        return False
    return True


def _run(rule: str, variables: Obj) -> Any:
    import celpy
    from celpy.evaluation import CELEvalError

    program = _program(rule)
    try:
        result = program.evaluate({k: celpy.json_to_cel(v) for k, v in variables.items()})
    except CELEvalError as exc:
        result = exc
    if isinstance(result, CELEvalError):
        missing = _MISSING.search(str(result.args[0]) if result.args else "")
        if missing:  # cel-go's runtime error for an absent field, which refuses the write
            return ValueError(f"no such key: {missing.group(1)}")
        raise Skipped(f"cannot be evaluated by mikro: {result.args[0] if result.args else result}")
    return result


def _failure(rule: Obj, path: str, type_name: str, variables: Obj) -> FieldError:
    message = rule.get("message") or f"failed rule: {rule['rule']}"
    if rule.get("messageExpression"):
        try:
            text = _run(rule["messageExpression"], variables)
            if isinstance(text, str) and text.strip():
                message = str(text)
        except Skipped:
            pass
    extra = rule.get("fieldPath") or ""
    at = (path if path != ROOT else "") + extra if extra else path
    at = at.lstrip(".") or ROOT
    kind, form = REASONS.get(rule.get("reason") or "", ("Invalid", f'Invalid value: "{type_name}": {{}}'))
    return FieldError(at, kind, form.format(message))


def _check_node(
    schema: Obj, value: Any, old: Any, has_old: bool, path: str, out: list[FieldError], skipped: list[str]
) -> None:
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        text = rule.get("rule") if isinstance(rule, dict) else None
        if not isinstance(text, str):
            continue
        transition = bool(_OLD_SELF.search(text))
        if transition and (not has_old or rule.get("optionalOldSelf")):
            continue  # transition rules run on updates of an existing value only
        variables = {"self": value, **({"oldSelf": old} if transition else {})}
        try:
            result = _run(text, variables)
        except Skipped as why:
            skipped.append(f"{path if path != ROOT else ''}.x-kubernetes-validations[{i}] ({text!r}) {why}".lstrip("."))
            continue
        type_name = str(schema.get("type", "object"))
        if isinstance(result, ValueError):
            out.append(FieldError(path, "Invalid", f'Invalid value: "{type_name}": {result} evaluating rule: {text}'))
        elif not isinstance(result, bool):  # celpy's BoolType is an int, not a bool
            from celpy.celtypes import BoolType

            if not isinstance(result, BoolType):
                skipped.append(f"{text!r} does not evaluate to a bool")
            elif not result:
                out.append(_failure(rule, path, type_name, variables))
        elif not result:
            out.append(_failure(rule, path, type_name, variables))


def _walk(
    schema: Any, value: Any, old: Any, has_old: bool, path: str, out: list[FieldError], skipped: list[str]
) -> None:
    if not isinstance(schema, dict) or value is None:
        return
    _check_node(schema, value, old, has_old, path, out, skipped)
    prefix = "" if path == ROOT else path + "."
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        old_map = old if has_old and isinstance(old, dict) else {}
        for key, item in value.items():
            sub = props.get(key)
            if sub is not None:
                at = prefix + key
            elif isinstance(extra, dict):
                sub, at = extra, f"{path if path != ROOT else ''}[{key}]"
            else:
                continue
            _walk(sub, item, old_map.get(key), key in old_map, at, out, skipped)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        # cel-go correlates old list items only for map-type lists; by index is close enough
        # for the rules that compare an item with itself, and skipped for others.
        olds = old if has_old and isinstance(old, list) else []
        for i, item in enumerate(value):
            _walk(
                schema["items"], item, olds[i] if i < len(olds) else None, i < len(olds), f"{path}[{i}]", out, skipped
            )


def _rule_texts(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for rule in schema.get("x-kubernetes-validations") or []:
            if isinstance(rule, dict):
                yield from (t for t in (rule.get("rule"), rule.get("messageExpression")) if isinstance(t, str))
        for value in schema.values():
            yield from _rule_texts(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _rule_texts(value)


def _has_rules(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "x-kubernetes-validations" in schema or any(_has_rules(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_rules(v) for v in schema)
    return False


_HAS_RULES: dict[int, tuple[Obj, bool]] = {}


def has_rules(schema: Obj) -> bool:
    """Whether any node of the schema carries CEL rules (most CRDs have none: no walk), looked
    up once per registered schema (kept alive here so that its id stays its own)."""
    known = _HAS_RULES.get(id(schema))
    if known is None or known[0] is not schema:
        if len(_HAS_RULES) > 256:
            _HAS_RULES.clear()
        known = _HAS_RULES[id(schema)] = (schema, _has_rules(schema))
    return known[1]


def errors(schema: Obj, obj: Obj, old: Obj | None) -> tuple[list[FieldError], list[str]]:
    """The rule failures of a custom object (and the rules mikro could not evaluate)."""
    out: list[FieldError] = []
    skipped: list[str] = []

    def root_view(o: Obj) -> Obj:
        meta = o.get("metadata") or {}
        return {**o, "metadata": {k: meta[k] for k in ("name", "generateName") if k in meta}}

    for text in _rule_texts(schema):  # compiled before the budget counts evaluation only
        compiles(text)
    with _budget() as spent:
        _walk(schema, root_view(obj), root_view(old) if old else None, old is not None, ROOT, out, skipped)
    if spent:
        skipped.append("the rules took more than mikro's evaluation budget; the rest are not enforced")
    return out, skipped


@contextmanager
def _budget() -> Iterator[list[bool]]:
    """Evaluation under BUDGET_CALLS; the yielded list holds True once the budget ran out."""
    spent: list[bool] = []
    previous = sys.gettrace()
    sys.settrace(_Budget(BUDGET_CALLS))
    try:
        yield spent
    except _OutOfBudget:
        spent.append(True)
    finally:
        sys.settrace(previous)


def condition_holds(expression: str, variables: Obj) -> bool | None:
    """A boolean CEL expression (an admission webhook's matchCondition) over `variables`;
    None when mikro cannot evaluate it or it is not a bool. ValueError for a runtime error
    cel-go would report too (an absent field)."""
    if not compiles(expression):
        return None
    result: Any = None
    with _budget() as spent:
        try:
            result = _run(expression, variables)
        except Skipped:
            return None
    if spent:
        return None
    if isinstance(result, ValueError):
        raise result
    from celpy.celtypes import BoolType

    return bool(result) if isinstance(result, (bool, BoolType)) else None
