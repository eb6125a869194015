"""Locales: spelling, comparison and choice (the shipped catalogue and campaign texts choose with these)."""

from __future__ import annotations

from campaigns.messages.locales import locale_chain


def test_locale_chain() -> None:
    assert locale_chain("de-CH-1996") == ["de-ch-1996", "de-ch", "de"]
    assert locale_chain("zh-TW") == ["zh-tw", "zh-hant"]
    assert locale_chain("zh-Hant-HK") == ["zh-hant-hk", "zh-hant"]
    assert locale_chain("zh-CN") == ["zh-cn", "zh-hans", "zh"]
    assert locale_chain("") == []
