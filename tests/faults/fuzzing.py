"""Shared pieces of the hypothesis fuzz tests (tests/faults/test_fuzz_*.py): settings for a loaded 2-core
machine, text mutations of real files, and a memory bound.

Time is bounded by hypothesis' deadline per example, memory by `peak_bytes` (tracemalloc) around one call.
"""

import tracemalloc
from typing import Any, Callable, Tuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Generous per-example deadline: the suite shares 2 cores with other test processes; a quadratic check or an
# alias expansion costs seconds to minutes, far beyond it, while a normal parse costs milliseconds.
FUZZ = settings(max_examples=150, deadline=3000, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)
MAX_PEAK_BYTES = 64 * 1024 * 1024  # a file of at most 256 KiB must not cost more than this to refuse


def peak_bytes(fn: Callable[[], Any]) -> Tuple[Any, BaseException, int]:
    """Run `fn`; (its result or None, the exception it raised or None, peak traced allocation in bytes)."""
    tracemalloc.start()
    result: Any = None
    error: Any = None
    try:
        result = fn()
    except BaseException as exc:  # the caller asserts on the type
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, error, peak


@st.composite
def mutated(draw: Any, original: str, alphabet: str) -> str:
    """`original` with a few random edits: a span replaced, deleted, duplicated, or text inserted."""
    text = original
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 40)))
        edit = draw(st.sampled_from(["replace", "delete", "duplicate", "insert"]))
        piece = draw(st.text(alphabet=alphabet, max_size=12))
        if edit == "replace":
            text = text[:i] + piece + text[j:]
        elif edit == "delete":
            text = text[:i] + text[j:]
        elif edit == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + piece + text[i:]
    return text
