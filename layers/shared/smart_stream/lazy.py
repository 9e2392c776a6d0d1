"""A part of the composition root built on first use, once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class built(Generic[T]):
    """A part of ``bootstrap.Services`` built on first use, once: under the instance's
    lock, since two request threads must not build two catalogues
    (``functools.cached_property`` does not lock). Once built it is a plain attribute of the
    instance."""

    def __init__(self, build: Callable[[Any], T]) -> None:
        self.build = build
        self.name = build.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> built[T]: ...

    @overload
    def __get__(self, instance: Any, owner: type | None = None) -> T: ...

    def __get__(self, instance: Any, owner: type | None = None) -> T | built[T]:
        if instance is None:
            return self
        with instance._building:
            if self.name not in instance.__dict__:
                instance.__dict__[self.name] = self.build(instance)
            value: T = instance.__dict__[self.name]
            return value
