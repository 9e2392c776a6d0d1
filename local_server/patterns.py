"""EventBridge event patterns, the part of the syntax this app's template uses, for the local
server to route events as the deployed rules and filters do.

A pattern is an object of fields: an event matches when it has every field the pattern
names and each matches (AND). A field's value is an object (its sub-fields), or a list of
matchers of which one is enough (OR); when the event's value is itself a list, one of its
elements is enough. The matchers are those of the "Comparison operators" page of the
EventBridge user guide
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html):
an exact value (string, number, boolean, null), ``{"prefix": s}``, ``{"suffix": s}``,
``{"wildcard": s}``, ``{"exists": bool}`` and ``{"anything-but": ...}`` over a value, a list
of values, or ``{"prefix"|"suffix"|"wildcard": s or [s, ...]}``. Anything else raises
``ValueError`` when the template is read, rather than never matching.
"""

from __future__ import annotations

import re
from typing import Any

_STRING_TESTS = ("prefix", "suffix", "wildcard")


def check(pattern: Any) -> None:
    """Raise ``ValueError`` for what ``matches`` does not implement."""
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError(f"an event pattern is a non-empty object, not {pattern!r}")
    for value in pattern.values():
        if isinstance(value, dict):
            check(value)
        elif isinstance(value, list) and value:
            for matcher in value:
                _check_matcher(matcher)
        else:
            raise ValueError(f"a pattern field is an object or a non-empty list, not {value!r}")


def _check_matcher(matcher: Any) -> None:
    if not isinstance(matcher, dict):
        if isinstance(matcher, list):
            raise ValueError(f"a nested list is not a matcher: {matcher!r}")
        return  # an exact value
    if len(matcher) != 1:
        raise ValueError(f"one operator per matcher: {matcher!r}")
    ((operator, operand),) = matcher.items()
    if operator in _STRING_TESTS and isinstance(operand, str):
        return
    if operator == "exists" and isinstance(operand, bool):
        return
    if operator == "anything-but":
        if isinstance(operand, dict) and len(operand) == 1:
            ((test, values),) = operand.items()
            if test in _STRING_TESTS and all(isinstance(v, str) for v in _listed(values)):
                return
        elif not isinstance(operand, dict):
            return  # a value, or a list of values
    raise ValueError(f"the local server does not implement the matcher {matcher!r}")


def matches(pattern: Any, event: Any) -> bool:
    """Whether ``event`` matches ``pattern``: one ``check`` accepts, or (as the catalogue
    stream's filters are used) a bare value standing for itself, or an empty pattern that
    asks for nothing. A matcher ``check`` would refuse never matches."""
    if not isinstance(pattern, dict) or not isinstance(event, dict):
        return False
    for name, sub in pattern.items():
        present = name in event
        if isinstance(sub, dict):
            if not present or not matches(sub, event[name]):
                return False
            continue
        matchers = sub if isinstance(sub, list) else [sub]  # (a bare value: lenient)
        if not present:
            if {"exists": False} not in matchers:
                return False
        elif not any(_matches_one(matcher, event[name]) for matcher in matchers):
            return False
    return True


def _matches_one(matcher: Any, value: Any) -> bool:
    if isinstance(value, list):
        return any(_matches_one(matcher, item) for item in value)
    if not isinstance(matcher, dict):
        return _same(matcher, value)
    if len(matcher) != 1:
        return False
    ((operator, operand),) = matcher.items()
    if operator == "exists":
        return bool(operand)  # the field is there (a missing one is handled by ``matches``)
    if operator == "anything-but":
        if isinstance(operand, dict):
            ((test, values),) = operand.items() if len(operand) == 1 else (("", ""),)
            return (
                test in _STRING_TESTS
                and isinstance(value, str)
                and not any(_string_test(test, v, value) for v in _listed(values))
            )
        return not any(_same(v, value) for v in _listed(operand))
    return (
        operator in _STRING_TESTS
        and isinstance(operand, str)
        and isinstance(value, str)
        and _string_test(operator, operand, value)
    )


def _same(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return expected is value  # JSON's true is not the number 1, as in Python
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return bool(expected == value)
    return type(expected) is type(value) and bool(expected == value)


def _listed(values: Any) -> list[Any]:
    return values if isinstance(values, list) else [values]


def _string_test(test: str, operand: str, value: str) -> bool:
    if test == "prefix":
        return value.startswith(operand)
    if test == "suffix":
        return value.endswith(operand)
    return _wildcard(operand).fullmatch(value) is not None


def _wildcard(pattern: str) -> re.Pattern[str]:
    """``*`` is any run of characters; ``\\*`` a star and ``\\\\`` a backslash."""
    parts, literal, i = [], [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            literal.append(pattern[i + 1])
            i += 2
            continue
        if char == "*":
            parts.append(re.escape("".join(literal)))
            parts.append(".*")
            literal = []
        else:
            literal.append(char)
        i += 1
    parts.append(re.escape("".join(literal)))
    return re.compile("".join(parts), re.DOTALL)
