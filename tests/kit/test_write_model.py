"""Request bodies refuse strings the database cannot store, and only those: the quick check in C and the walk
that names the place must agree."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from pydantic import ValidationError

from app.kit.schemas import WriteModel


class Body(WriteModel):
    note: Any = None


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.mark.parametrize(
    "note",
    [
        "plain",
        "a literal backslash-u0000: \\u0000",  # looks like a NUL escape once encoded; is not one
        "emoji \U0001f600 and 中文",
        {"k": ["x", 1, 2.5, None, True]},
        nested(3000, "deep but clean"),  # too deep for the quick check: the walk decides
    ],
)
def test_storable_strings_are_accepted(note: Any) -> None:
    assert Body.model_validate({"note": note}).note == note


@pytest.mark.parametrize(
    ("note", "where", "flaw"),
    [
        ("a\x00b", "note", "NUL"),
        ({"k": ["ok", "b\ud800"]}, "note.k.1", "unpaired surrogate"),
        ({"ke\x00y": 1}, "note.ke\x00y", "NUL"),
        (nested(3000, "x\x00"), "note." + ".".join(["n"] * 3000), "NUL"),
    ],
)
def test_unstorable_strings_are_refused_and_placed(note: Any, where: str, flaw: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Body.model_validate({"note": note})
    message = str(exc.value.errors()[0]["msg"])
    assert message.startswith(f"Value error, {where} contains") and flaw in message


class _CyclicGarbage:
    """Unreachable once built; only the cycle collector frees it, and its finalizer needs a little stack."""

    def __init__(self, failures: list[BaseException]) -> None:
        self.me = self
        self.failures = failures

    def __del__(self) -> None:
        def climb(n: int) -> int:
            return climb(n - 1) if n else 0

        try:
            climb(5)
        except RecursionError as exc:
            self.failures.append(exc)


def test_a_deep_body_does_not_make_unrelated_finalizers_fail() -> None:
    # A collection that starts while the quick check recurses through a deep body runs finalizers near the
    # recursion limit. The thresholds sweep where the collection lands, so some of them land deep.
    failures: list[BaseException] = []
    body = {"note": nested(3000, "x\x00")}
    threshold = gc.get_threshold()
    gc.freeze()  # the body and the rest of the heap out of the collector's way, so the sweep stays quick
    try:
        for allocations in range(100, 8000, 37):
            gc.collect()
            gc.disable()
            for _ in range(5):
                _CyclicGarbage(failures)
            gc.set_threshold(allocations)
            gc.enable()
            with pytest.raises(ValidationError):
                Body.model_validate(body)
    finally:
        gc.set_threshold(*threshold)
        gc.enable()
        gc.unfreeze()
        gc.collect()
    assert failures == []
