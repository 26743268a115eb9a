"""Label and field selectors as kubectl sends them in `?labelSelector=` and `?fieldSelector=`. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: `op` is one of = != in notin exists !exists ("==" is "=")."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, Any]) -> bool:
        if self.op == "=":
            return labels.get(self.key) in self.values
        if self.op == "!=":
            return labels.get(self.key) not in self.values
        if self.op == "in":
            return labels.get(self.key) in self.values
        if self.op == "notin":
            return labels.get(self.key) not in self.values
        if self.op == "exists":
            return self.key in labels
        return self.key not in labels


def parse_requirements(text: str | None) -> list[Requirement]:
    """`a=b,c!=d,e in (x,y),!f,g` as its requirements (ValueError for a term that is none)."""
    out: list[Requirement] = []
    for term in _split_terms(text or ""):
        m = _EQ.match(term)
        if m:
            key, op, value = m.groups()
            out.append(Requirement(key, "!=" if op == "!=" else "=", frozenset((value,))))
            continue
        m = _SET.match(term)
        if not m:
            raise ValueError(f"unable to parse requirement: {term.strip()!r}")
        negate, key, op, values = m.groups()
        if op:
            out.append(Requirement(key, op, frozenset(v.strip() for v in values.split(",") if v.strip())))
        else:
            out.append(Requirement(key, "!exists" if negate else "exists"))
    return out


def parse_label_selector(text: str | None) -> Predicate:
    """Compile `a=b,c!=d,e in (x,y),!f,g` into a predicate over a labels mapping."""
    if not text:
        return lambda labels: True
    checks = parse_requirements(text)
    return lambda labels: all(r.matches(labels or {}) for r in checks)


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


def field_equalities(text: str | None) -> dict[str, str]:
    """The `path=value` (and `==`) terms of a field selector (for reading by key); a path given
    twice keeps its last value, which the full predicate checks anyway."""
    out: dict[str, str] = {}
    for term in _split_terms(text or ""):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=)\s*(.*?)\s*$", term)
        if m:
            out[m.group(1)] = m.group(3)
    return out
