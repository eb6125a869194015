"""Every text a respondent sees for a campaign, in one lookup: the campaign's own wording, else the catalogue's.

A campaign file's ``messages: {<locale>: {<key>: <template>}}`` may set any key of the message catalogue
(``campaigns/catalogue/en.yaml``): the survey texts, the SMS conversation's replies, the email body and the
survey page. :func:`campaign_text` is what every caller renders such a text with, so an override is used
wherever the text appears. For one contact it takes the first of:

1. the campaign's text for the chosen locale,
2. the shipped catalogue text of the chosen locale,
3. the campaign's text for its default locale,
4. the shipped catalogue text of the default locale,
5. the shipped English text,

where the chosen locale is the contact's locale resolved against the campaign's locales plus the shipped
ones, else the campaign's default locale, else English (:func:`campaigns.messages.templates.choose_locales`: the same
rules as :func:`campaigns.messages.templates.texts_for`, so the replies to an SMS come in the language the invitation
was in). "Shipped text of a locale" falls back per key to less specific shipped files ("pt-BR" -> "pt") but not
to English, which comes last.

Rendering never leaves a respondent without an answer: a text that fails to render for this contact (a campaign
template using a property the contact lacks, a broken translation) is logged and the next text of the order is
used. Campaign texts were compiled and sandbox-checked when the campaign file was applied.
"""

from __future__ import annotations

import logging

from campaigns.definitions.campaign_file import CampaignDefinition
from campaigns.messages import catalogue
from campaigns.messages.templates import TemplateProblem, choose_locales, render, text_sources

__all__ = ["campaign_override", "campaign_text", "text_language"]

log = logging.getLogger(__name__)


def campaign_text(
    definition: CampaignDefinition | None, locale: str | None, key: str, /, **variables: object
) -> str:
    """Catalogue text ``key`` for a contact of ``definition`` with locale ``locale``, rendered with ``variables``.

    See the module docstring for the order. ``locale`` is the contact's locale (None when unknown: the
    campaign's default locale is used). With ``definition`` None (a message about no campaign, such as the
    answer to a number never surveyed) this is :func:`campaigns.messages.catalogue.text`. An unknown ``key`` raises
    KeyError: that is a programming error. Missing variables render empty.
    """
    if definition is None:
        return catalogue.text(locale, key, **variables)
    sources = _sources(definition, locale, key)
    failure: TemplateProblem | None = None
    for source, written in sources:
        try:
            return render(source, variables)
        except TemplateProblem as problem:
            failure = problem
            origin = "the campaign's" if written else "the shipped"
            log.warning(
                "%s text %r of campaign %r failed for locale %r (%s); using the next one",
                origin,
                key,
                definition.name,
                locale,
                problem.message,
            )
    assert failure is not None  # _sources is never empty for a known key
    raise failure


def campaign_override(definition: CampaignDefinition | None, locale: str | None, key: str) -> str | None:
    """The campaign's own source of ``key`` that :func:`campaign_text` would use first, or None.

    None when the campaign wrote no such text for this contact or when a shipped text comes before it (a
    German contact of a campaign that wrote only an English text gets the shipped German one). For texts
    that only a campaign adds, such as the email intro above the question.
    """
    if definition is None:
        return None
    source, written = _sources(definition, locale, key)[0]
    return source if written else None


def text_language(definition: CampaignDefinition | None, locale: str | None) -> str:
    """The shipped locale that :func:`campaign_text` mostly takes texts from: the ``lang`` of a page or email.

    The shipped locale serving the chosen locale, else the one serving the campaign's default locale, else
    English; with ``definition`` None, :func:`campaigns.messages.catalogue.resolve`.
    """
    if definition is None:
        return catalogue.resolve(locale)
    chosen, default = choose_locales(definition.messages, locale, definition.locale)
    for candidate in (chosen, default):
        shipped = catalogue.best_locale(candidate, catalogue.LOCALES)
        if shipped is not None:
            return shipped
    return catalogue.FALLBACK_LOCALE


def _sources(definition: CampaignDefinition, locale: str | None, key: str) -> list[tuple[str, bool]]:
    if key not in catalogue.KEYS:
        raise KeyError(f"no catalogue text {key!r}; known keys: {', '.join(catalogue.KEYS)}")
    sources: dict[str, bool] = {}
    for source, written in text_sources(definition.messages, locale, definition.locale, key):
        sources.setdefault(source, written)  # the same source twice would fail twice: try it once
    return list(sources.items())
