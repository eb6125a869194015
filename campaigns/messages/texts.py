"""Every text a respondent sees, resolved in one place: the campaign's own wording, else the catalogue's.

A campaign file's ``messages: {<locale>: {<key>: <template>}}`` may set any key of the message catalogue
(``campaigns/messages/translations/en.yaml``): the survey texts, the SMS conversation's replies, the email body and
the survey page. :class:`ContactTexts` is what every caller renders such a text with, so an override is used
wherever the text appears. It is made once per contact and message (:func:`contact_texts`), which chooses two
locales (:func:`choose_locales`):

- the chosen locale: the first of the contact's locale, the campaign's default locale and English, each
  resolved (:func:`campaigns.messages.locales.resolve_locale`) against the locales the campaign has texts for
  plus the shipped ones, campaign locales first, so a "pt-BR" contact gets the campaign's "pt-BR" texts, else
  "pt", else shipped "pt";
- the default locale: the campaign's default locale resolved the same way, else English.

Each key then comes from the first of (:meth:`ContactTexts.sources`):

1. the campaign's text for the chosen locale,
2. the shipped catalogue text of the chosen locale,
3. the campaign's text for its default locale,
4. the shipped catalogue text of the default locale,
5. the shipped English text,

where "shipped text of a locale" falls back per key to less specific shipped files ("pt-BR" -> "pt") but not to
English, which comes last. The same order serves the invitation, the replies to an SMS and the survey page, so
they all come in the language the invitation was in. A message about no campaign (the answer to a number never
surveyed, a link we do not know) is the same lookup without campaign texts and with English as the default:
the catalogue's text for the locale (:func:`text`).

Rendering never leaves a respondent without an answer: a text that fails to render for this contact (a campaign
template using a property the contact lacks, a broken translation) is logged and the next text of the order is
used. Campaign texts were compiled and sandbox-checked when the campaign file was applied.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from campaigns.definitions.model import CampaignDefinition
from campaigns.messages import catalogue
from campaigns.messages.catalogue import MESSAGE_FIELDS, MessageTexts, shipped_text
from campaigns.messages.locales import FALLBACK_LOCALE, resolve_locale
from campaigns.messages.templates import TemplateProblem, render

__all__ = [
    "ContactTexts",
    "campaign_override",
    "campaign_text",
    "choose_locales",
    "contact_texts",
    "text",
    "text_language",
    "text_sources",
    "texts_for",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContactTexts:
    """The texts of one contact for one message: the two locales of the module docstring, chosen once.

    ``chosen`` and ``default`` are spelled as the campaign or the catalogue spells them; ``campaign`` is the
    campaign's name (None for a message about no campaign), for the log.
    """

    messages: Mapping[str, MessageTexts]
    chosen: str
    default: str
    campaign: str | None = None

    @classmethod
    def choose(
        cls,
        messages: Mapping[str, MessageTexts],
        contact_locale: str | None,
        default_locale: str,
        *,
        campaign: str | None = None,
    ) -> ContactTexts:
        chosen, default = choose_locales(messages, contact_locale, default_locale)
        return cls(messages, chosen, default, campaign)

    def sources(self, key: str) -> list[tuple[str, bool]]:
        """Every source of catalogue key ``key``, best first, each with "the campaign wrote it".

        The order of the module docstring; sources that are not given are left out, so the list is empty only
        for a key the catalogue does not have.
        """
        own_chosen, own_default = self.messages.get(self.chosen), self.messages.get(self.default)
        candidates = [
            (own_chosen.get(key) if own_chosen is not None else None, True),
            (shipped_text(self.chosen, key), False),
            (own_default.get(key) if own_default is not None else None, True),
            (shipped_text(self.default, key), False),
            (shipped_text(FALLBACK_LOCALE, key), False),
        ]
        return [(source, written) for source, written in candidates if source is not None]

    def text(self, key: str, /, **variables: object) -> str:
        """Catalogue text ``key``, rendered with ``variables`` (missing ones render empty).

        A source that fails to render is logged and the next one is used; an unknown ``key`` raises KeyError,
        since that is a programming error.
        """
        failure: TemplateProblem | None = None
        for source, written in self._distinct_sources(key):
            try:
                return render(source, variables)
            except TemplateProblem as problem:
                failure = problem
                log.warning(
                    "%s text %r of %s failed for locale %r (%s); using the next one",
                    "the campaign's" if written else "the shipped",
                    key,
                    f"campaign {self.campaign!r}" if self.campaign else "no campaign",
                    self.chosen,
                    problem.message,
                )
        assert failure is not None  # a known key always has the English source
        raise failure

    def first_text(self, keys: Sequence[str], /, **variables: object) -> str:
        """The first of ``keys`` (most specific first) the campaign wrote its own text for, rendered; else the
        first key's shipped text. See :mod:`campaigns.messages.per_category`."""
        chosen = next((key for key in keys if self.override(key) is not None), keys[0])
        return self.text(chosen, **variables)

    def override(self, key: str) -> str | None:
        """The campaign's own source of ``key`` that :meth:`text` would use first, or None.

        None when the campaign wrote no such text for this contact or when a shipped text comes before it (a
        German contact of a campaign that wrote only an English text gets the shipped German one). For texts
        that only a campaign adds, such as the email intro above the question.
        """
        source, written = self._distinct_sources(key)[0]
        return source if written else None

    def survey_texts(self) -> MessageTexts:
        """The five survey texts, every field set: each the first of :meth:`sources`.

        A campaign can thus override only the SMS of a locale and keep the shipped email texts in the same
        language.
        """
        return MessageTexts.from_mapping({name: self.sources(name)[0][0] for name in MESSAGE_FIELDS})

    @property
    def language(self) -> str:
        """The shipped locale the texts mostly come from, for the ``lang`` of a page or email.

        The shipped locale serving the chosen locale, else the one serving the default locale, else English.
        """
        for candidate in (self.chosen, self.default):
            shipped = catalogue.shipped_locale(candidate)
            if shipped is not None:
                return shipped
        return FALLBACK_LOCALE

    def _distinct_sources(self, key: str) -> list[tuple[str, bool]]:
        if key not in catalogue.KEYS:
            raise KeyError(f"no catalogue text {key!r}; known keys: {', '.join(catalogue.KEYS)}")
        sources: dict[str, bool] = {}
        for source, written in self.sources(key):
            sources.setdefault(source, written)  # the same source twice would fail twice: try it once
        return list(sources.items())


def choose_locales(
    messages: Mapping[str, MessageTexts], contact_locale: str | None, default_locale: str
) -> tuple[str, str]:
    """(chosen locale, default locale) for a contact, each spelled as the campaign or the catalogue spells it.

    See the module docstring. ``messages`` are the campaign's texts by locale.
    """
    available = [*messages, *(locale for locale in catalogue.LOCALES if locale not in messages)]
    chosen = next(
        (
            resolved
            for candidate in (contact_locale, default_locale, FALLBACK_LOCALE)
            if candidate and (resolved := resolve_locale(candidate, available)) is not None
        ),
        FALLBACK_LOCALE,
    )
    default = resolve_locale(default_locale, available) or FALLBACK_LOCALE
    return chosen, default


def contact_texts(definition: CampaignDefinition | None, locale: str | None) -> ContactTexts:
    """The texts a contact with locale ``locale`` (None: unknown) sees for ``definition``'s campaign.

    With ``definition`` None (a message about no campaign) the catalogue's texts for ``locale``, else English.
    """
    if definition is None:
        return ContactTexts.choose({}, locale, FALLBACK_LOCALE)
    return ContactTexts.choose(definition.messages, locale, definition.locale, campaign=definition.name)


def campaign_text(
    definition: CampaignDefinition | None, locale: str | None, key: str, /, **variables: object
) -> str:
    """Catalogue text ``key`` for a contact of ``definition`` with locale ``locale``, rendered: one text of one
    message. A message made of several texts makes :func:`contact_texts` once and asks it for each."""
    return contact_texts(definition, locale).text(key, **variables)


def text(locale: str | None, key: str, /, **variables: object) -> str:
    """The catalogue's text ``key`` for ``locale``, rendered: what someone no campaign reached is sent."""
    return contact_texts(None, locale).text(key, **variables)


def campaign_override(definition: CampaignDefinition | None, locale: str | None, key: str) -> str | None:
    """:meth:`ContactTexts.override` for one text (always None without a campaign: nothing is its own)."""
    return contact_texts(definition, locale).override(key)


def text_language(definition: CampaignDefinition | None, locale: str | None) -> str:
    """:attr:`ContactTexts.language` of a contact of ``definition`` with locale ``locale``."""
    return contact_texts(definition, locale).language


def text_sources(
    messages: Mapping[str, MessageTexts], contact_locale: str | None, default_locale: str, key: str
) -> list[tuple[str, bool]]:
    """:meth:`ContactTexts.sources` for a contact of a campaign with these texts and this default locale."""
    return ContactTexts.choose(messages, contact_locale, default_locale).sources(key)


def texts_for(
    messages: Mapping[str, MessageTexts], contact_locale: str | None, default_locale: str
) -> tuple[str, MessageTexts]:
    """The locale chosen for a contact and its complete survey texts (:meth:`ContactTexts.survey_texts`)."""
    texts = ContactTexts.choose(messages, contact_locale, default_locale)
    return texts.chosen, texts.survey_texts()
