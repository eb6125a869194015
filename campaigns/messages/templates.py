"""Templates: the variables of one contact and sandboxed rendering (SMS segments: :mod:`.segments`).

Campaign templates are written by admins but rendered for every contact, with the contact's free properties
as variables, so they run in Jinja2's (immutable) sandbox: no attribute starting with "_", no mutation of the
variables, no access to Python internals; and within the limits of :mod:`campaigns.messages.sandbox` (a
source of at most MAX_TEMPLATE_LENGTH characters writes at most MAX_WRITTEN, in a bounded number of steps). A variable that a contact does not have renders as an empty string,
and so does anything reached through it (``{{ missing.attribute.upper() }}``), because a contact without a
"plan" property must still get a sensible message, not an error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.meta
from jinja2.exceptions import SecurityError

from campaigns.messages.names import first_name, imported_first_name
from campaigns.messages.sandbox import MAX_WRITTEN, BoundedSandbox, TemplateLimitError, budget
from campaigns.messages.segments import sms_segments  # re-exported: callers import it from here too

__all__ = [
    "ENVIRONMENT",
    "MAX_TEMPLATE_LENGTH",
    "MAX_WRITTEN",
    "SAMPLE_VARIABLES",
    "TemplateProblem",
    "render",
    "sms_segments",
    "template_names",
    "template_syntax_problem",
    "template_variables",
]


class TemplateProblem(Exception):
    """A template could not be compiled or rendered; ``message`` says why in one line.

    ``security`` is True when the sandbox refused something (an attempt to reach Python internals, or going
    over its limits with the sample data of validation), which is never a matter of missing data and
    therefore always a mistake in the template itself.
    """

    def __init__(self, message: str, *, security: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.security = security


class _BlankUndefined(jinja2.ChainableUndefined):
    """Missing variables render as "" and stay chainable, even through calls; sandbox refusals still raise.

    The sandbox reports an unsafe attribute by returning an Undefined that carries SecurityError; printing,
    testing or iterating that one raises, so an escape attempt is reported instead of silently rendering "".
    """

    __slots__ = ()

    def _refused(self) -> bool:
        return self._undefined_exception is SecurityError

    def __str__(self) -> str:
        if self._refused():
            self._fail_with_undefined_error()
        return ""

    def __bool__(self) -> bool:
        if self._refused():
            self._fail_with_undefined_error()
        return False

    def __iter__(self) -> Any:
        if self._refused():
            self._fail_with_undefined_error()
        return iter(())

    def __call__(self, *args: object, **kwargs: object) -> _BlankUndefined:  # type: ignore[override]
        # `{{ plan.upper() }}` for a contact without a plan: the call yields the same blank.
        if self._refused():
            self._fail_with_undefined_error()
        return self


# One environment for the whole process: compiled templates are cached per source (see _compile).
ENVIRONMENT = BoundedSandbox(
    autoescape=False,
    undefined=_BlankUndefined,
    keep_trailing_newline=False,
)

# --- variables and rendering --------------------------------------------------------------------------------


def template_variables(
    name: str | None,
    properties: Mapping[str, object],
    brand: str | None,
    survey_url: str,
    *,
    locale: str | None = None,
) -> dict[str, object]:
    """Everything a template may use for one contact whose locale is ``locale`` (None: unknown).

    Every property is a variable of its own (``{{ plan }}``); names that are not identifiers ("account
    manager") are reachable as ``{{ properties['account manager'] }}``. The built-in names win over
    properties of the same name, except ``company``, which *is* the contact's company property when set and
    falls back to the campaign's brand, so B2B campaigns name the customer's account and B2C ones the brand,
    and ``first_name``: an imported one wins, else it is derived from the name for the locale
    (:mod:`campaigns.messages.names`).
    """
    full_name = (name or "").strip()
    company = _text(properties.get("company")) or (brand or "").strip()
    variables: dict[str, object] = {key: value for key, value in properties.items() if isinstance(key, str)}
    variables.update(
        first_name=imported_first_name(properties) or first_name(full_name, locale),
        name=full_name,
        company=company,
        brand=(brand or "").strip(),
        survey_url=survey_url,
        properties=dict(properties),
    )
    return variables


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


# What validation renders SMS templates with to estimate their length: a long-ish first name, a company name
# and a survey link as long as the real ones.
SAMPLE_VARIABLES: dict[str, object] = template_variables(
    "Alexandra Sample", {}, "Example Company", "https://nps.example.com/s/abcdefghijklmnopqrstuv"
)

_SPACE_RUN = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_COMMA = re.compile(r"[ \t]+,")


def template_syntax_problem(source: str) -> str | None:
    """Why ``source`` does not compile ("line 2: unexpected '}'"), or None when it does."""
    try:
        _compile(source)
    except TemplateProblem as problem:
        return problem.message
    return None


def template_names(source: str) -> frozenset[str]:
    """The variables a template reads from its context ("{{ plan }}", "{% if vip %}"), Jinja's globals aside.

    Empty for a template that does not compile (its syntax error is reported instead).
    """
    try:
        parsed = ENVIRONMENT.parse(source)
    except jinja2.TemplateSyntaxError:
        return frozenset()
    return frozenset(jinja2.meta.find_undeclared_variables(parsed) - set(ENVIRONMENT.globals))


# Long enough for an email intro of several paragraphs; a template is a message, not a document.
MAX_TEMPLATE_LENGTH = 5_000


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    """Compiled template, cached: the dispatcher renders the same few sources for thousands of contacts."""
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise TemplateProblem(
            f"the template is too long ({len(source):,} characters; at most {MAX_TEMPLATE_LENGTH:,})",
            security=True,
        )
    try:
        return ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on line {exc.lineno}: {exc.message}") from None


def render(source: str, variables: Mapping[str, object]) -> str:
    """Render a template in the sandbox; TemplateProblem (never a raw traceback) when it cannot be.

    Runs of spaces left by empty variables ("Hi {{ first_name }} ,") are collapsed, spaces before a comma are
    dropped and the result is stripped; line breaks are kept (email intros may have paragraphs).
    """
    template = _compile(source)
    try:
        with budget():
            text = template.render(dict(variables))
    except TemplateLimitError as exc:
        raise TemplateProblem(f"the template {exc}", security=True) from None
    except SecurityError as exc:
        raise TemplateProblem(
            f"the template uses something the sandbox forbids: {exc}", security=True
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"the template uses a missing value: {exc}") from None
    except Exception as exc:  # any runtime error inside admin-written template code
        raise TemplateProblem(f"the template failed: {type(exc).__name__}: {exc}") from None
    return _tidy(text)


def _tidy(text: str) -> str:
    lines = (_SPACE_BEFORE_COMMA.sub(",", _SPACE_RUN.sub(" ", line)).rstrip() for line in text.split("\n"))
    return "\n".join(lines).strip()
