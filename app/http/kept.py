"""What a process keeps of its recent answers: a bounded map, least recently used out first."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from flask import current_app

Key = TypeVar("Key")
Value = TypeVar("Value")


class Kept(Generic[Key, Value]):
    """Up to ``size`` values by key, shared by a worker's threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: OrderedDict[Key, Value] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Key) -> Value | None:
        """The value kept under ``key``, if any."""
        with self.lock:
            value = self.values.get(key)
            if value is not None:
                self.values.move_to_end(key)
            return value

    def put(self, key: Key, value: Value) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used beyond ``size``."""
        with self.lock:
            self.values[key] = value
            while len(self.values) > self.size:
                self.values.popitem(last=False)


def of_current_app(name: str, size: int) -> Kept[Any, Any]:
    """The current app's ``Kept`` called ``name`` in this process, made on its first use."""
    kept: Kept[Any, Any] | None = current_app.extensions.get(name)
    if kept is None:
        kept = current_app.extensions.setdefault(name, Kept(size))
    return kept
