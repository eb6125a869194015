"""Locales: spelling, comparison and choice (the shipped catalogue and campaign texts choose with these)."""

from __future__ import annotations

import pytest

from campaigns.messages.locales import language_of, locale_chain, text_direction


def test_locale_chain() -> None:
    assert locale_chain("de-CH-1996") == ["de-ch-1996", "de-ch", "de"]
    assert locale_chain("zh-TW") == ["zh-tw", "zh-hant"]
    assert locale_chain("zh-Hant-HK") == ["zh-hant-hk", "zh-hant"]
    assert locale_chain("zh-CN") == ["zh-cn", "zh-hans", "zh"]
    assert locale_chain("") == []


@pytest.mark.parametrize(
    ("locale", "language"),
    [("pt_BR.UTF-8", "pt"), ("zh-Hant", "zh"), ("DE", "de"), (" fi ", "fi"), ("", "")],
)
def test_the_language_of_a_locale_is_read_the_one_way_every_module_reads_it(
    locale: str, language: str
) -> None:
    assert language_of(locale) == language


@pytest.mark.parametrize(
    ("locale", "direction"),
    [
        ("ar", "rtl"),
        ("ar-EG", "rtl"),
        ("AR_sa.UTF-8", "rtl"),
        ("he", "rtl"),
        ("fa-IR", "rtl"),
        ("ur", "rtl"),
        ("en", "ltr"),
        ("zh-Hant", "ltr"),
        ("", "ltr"),
        ("arn", "ltr"),  # Mapudungun is written left to right; only the language subtag decides
    ],
)
def test_right_to_left_languages_are_known_by_their_language(locale: str, direction: str) -> None:
    assert text_direction(locale) == direction
