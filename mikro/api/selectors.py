"""Label and field selectors as kubectl sends them in `?labelSelector=` and `?fieldSelector=`. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_SET = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        terms.append(current)
    return terms


Predicate = Callable[[dict[str, Any]], bool]


def parse_label_selector(text: str | None) -> Predicate:
    """Compile `a=b,c!=d,e in (x,y),!f,g` into a predicate over a labels mapping."""
    if not text:
        return lambda labels: True
    checks: list[Predicate] = []
    for term in _split_terms(text):
        m = _EQ.match(term)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                checks.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                checks.append(lambda lb, k=key, v=value: lb.get(k) == v)
            continue
        m = _SET.match(term)
        if not m:
            raise ValueError(f"unable to parse requirement: {term.strip()!r}")
        negate, key, op, values = m.groups()
        if op:
            options = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                checks.append(lambda lb, k=key, o=options: lb.get(k) in o)
            else:
                checks.append(lambda lb, k=key, o=options: lb.get(k) not in o)
        elif negate:
            checks.append(lambda lb, k=key: k not in lb)
        else:
            checks.append(lambda lb, k=key: k in lb)
    return lambda labels: all(check(labels or {}) for check in checks)


def field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def parse_field_selector(text: str | None) -> Predicate:
    """Compile `metadata.name=x,status.phase!=Running` into a predicate over an object."""
    if not text:
        return lambda obj: True
    checks: list[Predicate] = []
    for term in _split_terms(text):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise ValueError(f"invalid field selector: {term.strip()!r}")
        path, op, value = m.groups()
        if op == "!=":
            checks.append(lambda o, p=path, v=value: field_value(o, p) != v)
        else:
            checks.append(lambda o, p=path, v=value: field_value(o, p) == v)
    return lambda obj: all(check(obj) for check in checks)
