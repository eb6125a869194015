"""The bounded sandbox campaign templates render in: Jinja2's immutable sandbox with limits on one render.

The sandbox keeps templates away from Python internals; these limits keep one template, by mistake or on
purpose, from spending minutes or gigabytes of the process that renders it for every contact:

- at most MAX_WRITTEN characters written, counted as they are written (loops, ``{% set %}`` blocks and
  ``{% filter %}`` blocks and macros included, so what a macro writes counts where it is written and again
  where its result is printed), and a loop stops there instead of building 30 million characters;
- no value longer than MAX_WRITTEN: ``*``, ``+``, ``~``, ``%``, filters and calls are checked, a repetition
  before it is built;
- sizes at most MAX_NUMBER: what is given to ``range``, ``lipsum``, the padding methods (``"x".center(n)``) and
  filters (``center``, ``indent``, ``batch``, ``slice``, ``join``, ``wordwrap``: numbers, and texts of at most
  that many characters), and format widths (``"%9999s"``, ``"{:>9999}"``); what one of them builds before
  its result is checked stays within a few million characters;
- at most MAX_STEPS loop iterations and calls together, so a loop or a recursive macro that writes nothing
  still ends.

Going over a limit raises :class:`TemplateLimitError`, a :class:`~jinja2.exceptions.SecurityError`: what a
template may do is the sandbox's to decide. The counters live for one :func:`budget` block (one render).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["MAX_NUMBER", "MAX_STEPS", "MAX_WRITTEN", "BoundedSandbox", "TemplateLimitError", "budget"]

MAX_WRITTEN = 10_000
MAX_NUMBER = 1_000
MAX_STEPS = 100_000
_MAX_INT_BITS = 4096  # about 1,200 digits

# Filters whose parameters are sizes (a width, a count, a separator repeated per item): at most MAX_NUMBER.
_PADDING_FILTERS = frozenset({"center", "indent", "batch", "slice", "join", "wordwrap"})
# Callables whose numeric arguments are sizes: what they build grows with them.
_SIZED_STR_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_SIZED_GLOBALS = ("range", "lipsum")
# A %-format conversion's width and precision: "%-20s", "%.3f", "%(name)08d", "%*s".
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d+|\*)?(?:\.(\d+|\*))?")
# The filters the syntax tree is rewritten to call (see BoundedSandbox._parse).
_STEPS, _WRITTEN, _VALUE = "bounded_steps", "bounded_written", "bounded_value"


class TemplateLimitError(SecurityError):
    """A template went over one of the limits of one render; the message says which, as "the template ..."."""


@dataclass
class _Budget:
    steps: int = 0
    written: int = 0


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


@contextlib.contextmanager
def budget() -> Iterator[None]:
    """Count steps and characters written for the renders inside the block (one render: see templates.render)."""
    token = _budget.set(_Budget())
    try:
        yield
    finally:
        _budget.reset(token)


def _step() -> None:
    counters = _budget.get()
    if counters is not None:
        counters.steps += 1
        if counters.steps > MAX_STEPS:
            raise TemplateLimitError(f"takes more than {MAX_STEPS:,} steps (loop iterations and calls)")


def _checked(value: Any) -> Any:
    """`value`, unless it is text or a collection longer than MAX_WRITTEN."""
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_WRITTEN:
        raise TemplateLimitError(f"builds a value of more than {MAX_WRITTEN:,} characters or items")
    return value


def _check_numbers(values: Iterable[object]) -> None:
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            raise TemplateLimitError(f"uses the number {value:g} where at most {MAX_NUMBER:,} is allowed")


def _check_sizes(values: Iterable[object]) -> None:
    """Numbers and texts given as sizes: at most MAX_NUMBER, or MAX_NUMBER characters."""
    values = list(values)
    _check_numbers(values)
    for value in values:
        if isinstance(value, str) and len(value) > MAX_NUMBER:
            raise TemplateLimitError(
                f"uses a text of {len(value):,} characters where at most {MAX_NUMBER:,} is allowed"
            )


def _check_percent_format(text: str) -> None:
    for match in _PERCENT_SPEC.finditer(text):
        _check_width([part for part in match.groups() if part])


def _check_brace_format(text: str) -> None:
    for _, _, spec, _ in string.Formatter().parse(text):
        _check_width(["*"] if "{" in (spec or "") else re.findall(r"\d+", spec or ""))


def _check_width(parts: list[str]) -> None:
    """Widths and precisions written in a format; one taken from the arguments ("*", "{w}") is refused."""
    if "*" in parts:
        raise TemplateLimitError("takes a format width from a value; write the width in the format")
    _check_numbers(int(part) for part in parts)


def _check_replace(text: str, old: str, new: str) -> None:
    """Refuse a replacement whose result would be too long, before it is built."""
    matches = len(text) + 1 if old == "" else text.count(old)
    _checked_length(len(text) + matches * (len(new) - len(old)))


def _checked_length(length: int) -> None:
    if length > MAX_WRITTEN:
        raise TemplateLimitError(f"builds a value of more than {MAX_WRITTEN:,} characters or items")


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps the pass_context / pass_eval_context mark
    def bounded(*args: Any, **kwargs: Any) -> Any:
        plain = [arg for arg in args if not isinstance(arg, Context | nodes.EvalContext | Environment)]
        if name in _PADDING_FILTERS:
            _check_sizes([*plain[1:], *kwargs.values()])
        elif name == "format" and plain and isinstance(plain[0], str):
            _check_percent_format(plain[0])
        elif name == "replace" and len(plain) >= 3 and all(isinstance(arg, str) for arg in plain[:3]):
            _check_replace(*plain[:3])
        return _checked(function(*args, **kwargs))

    return bounded


@pass_context
def _count_steps(_context: Context, iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _step()
        yield item


@pass_context
def _count_written(_context: Context, value: Any) -> Any:
    counters = _budget.get()
    if counters is not None:
        counters.written += len(str(value))
        if counters.written > MAX_WRITTEN:
            raise TemplateLimitError(f"writes more than {MAX_WRITTEN:,} characters")
    return value


@pass_context
def _check_value(_context: Context, value: Any) -> Any:
    return _checked(value)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the limits of this module."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters.update({_STEPS: _count_steps, _WRITTEN: _count_written, _VALUE: _check_value})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """The syntax tree with every loop's iterable, written value and ``~`` wrapped in a counting filter.

        Jinja2 has no public hook between parsing and code generation; `parse` and `compile` both come here.
        The counting filters take the context, which keeps Jinja2 from evaluating them at compile time.
        """
        tree = super()._parse(source, name, filename)
        for parent in [tree, *tree.find_all(nodes.Node)]:
            for field in parent.fields:
                child = getattr(parent, field, None)
                if isinstance(child, nodes.Concat):
                    setattr(parent, field, _wrap(child, _VALUE))
                elif isinstance(child, list):
                    setattr(
                        parent, field, [_wrap(c, _VALUE) if isinstance(c, nodes.Concat) else c for c in child]
                    )
        for loop in list(tree.find_all(nodes.For)):
            loop.iter = _wrap(loop.iter, _STEPS)
        for output in list(tree.find_all(nodes.Output)):
            output.nodes = [_wrap(child, _WRITTEN) for child in output.nodes]
        return tree

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        receiver = getattr(__obj, "__self__", None)
        method = getattr(__obj, "__name__", "") if isinstance(receiver, str) else ""
        sized = method in _SIZED_STR_METHODS or any(__obj is __self.globals.get(f) for f in _SIZED_GLOBALS)
        if sized:
            _check_sizes([*args, *kwargs.values()])
        elif method == "replace" and len(args) >= 2 and all(isinstance(arg, str) for arg in args[:2]):
            _check_replace(str(receiver), args[0], args[1])
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``"...".format`` as the sandbox wraps it, once its format's widths are checked."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_brace_format(value.__self__)
        return wrapped

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repetition(left, right)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(left.bit_length(), 1) * right > _MAX_INT_BITS:
                raise TemplateLimitError(f"computes a number of more than {_MAX_INT_BITS:,} bits")
        elif (
            operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
        ):
            _checked_length(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return _checked(super().call_binop(context, operator, left, right))


def _check_repetition(left: Any, right: Any) -> None:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(count, int):
            _checked_length(len(sequence) * count)
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > _MAX_INT_BITS
    ):
        raise TemplateLimitError(f"computes a number of more than {_MAX_INT_BITS:,} bits")


def _wrap(node: nodes.Node, filter_name: str) -> nodes.Filter:
    return nodes.Filter(node, filter_name, [], [], None, None, lineno=node.lineno)
