"""Which catalogue texts a respondent of each NPS category gets after the score: the follow-up question and the
closing. Pure: the SMS conversation and the survey page ask these functions for keys, most specific first, and
render the first one with :meth:`campaigns.messages.texts.ContactTexts.first_text`.

- The question: detractors (0-6) ``follow_up_detractor`` ("What could we do better?"), passives
  ``follow_up_passive``, promoters ``follow_up_promoter`` ("What do you like most?").
- The closing: ``closing_<category>``; a detractor whose follow-up is open for the team is told someone will
  get in touch (``closing_detractor_contact``), and a promoter of a campaign with a ``promoter_link`` gets the
  link (``closing_promoter_link`` by SMS; the page shows ``closing_promoter`` and a button to it).
- Each chain ends with the text both channels used before there were categories (``ask_comment``,
  ``thank_you``; ``page_comment_label``, ``page_thanks``), so a campaign file that words that one text its own
  way keeps its wording for every category until it words the categories too.
"""

from __future__ import annotations

from storage.enums import Category

__all__ = ["closing_keys", "question_keys"]


def question_keys(category: str | None, generic: str) -> tuple[str, ...]:
    """The follow-up question after a score of ``category`` (None: no score yet); ``generic`` ends the chain."""
    return (f"follow_up_{Category(category)}", generic) if category else (generic,)


def closing_keys(
    category: str | None, generic: str, *, contact: bool = False, link: bool = False
) -> tuple[str, ...]:
    """The closing for ``category``: ``contact`` when a follow-up is open for the team, ``link`` when the
    promoter link goes into the text itself (SMS)."""
    if not category:
        return (generic,)
    specific = []
    if category == Category.DETRACTOR and contact:
        specific.append("closing_detractor_contact")
    if category == Category.PROMOTER and link:
        specific.append("closing_promoter_link")
    return (*specific, f"closing_{Category(category)}", generic)
