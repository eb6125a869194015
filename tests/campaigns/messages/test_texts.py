"""campaign_text: the campaign's own texts first, then the catalogue's, in the order the module documents."""

from __future__ import annotations

import textwrap

import pytest

from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.model import CampaignDefinition
from campaigns.messages.catalogue import KEYS, MESSAGE_FIELDS, SHIPPED_TEXTS, MessageTexts, shipped_text
from campaigns.messages.locales import resolve_locale
from campaigns.messages.per_category import closing_keys, question_keys
from campaigns.messages.templates import render
from campaigns.messages.texts import (
    campaign_override,
    campaign_text,
    choose_locales,
    contact_texts,
    text,
    text_language,
    text_sources,
    texts_for,
)
from storage.enums import CampaignKind

VARIABLES = {"first_name": "Ana", "company": "Acme"}


def definition(locale: str = "en", **messages: dict[str, str]) -> CampaignDefinition:
    return CampaignDefinition(
        name="pulse",
        kind=CampaignKind.RELATIONSHIP,
        interval_days=90,
        locale=locale,
        messages={
            code.replace("_", "-"): MessageTexts.from_mapping(texts) for code, texts in messages.items()
        },
    )


@pytest.mark.parametrize("locale", [None, "en", "de", "de-AT", "zh-TW", "sv"])
@pytest.mark.parametrize("key", ["ask_comment", "help", "page_thanks", "question", "sms"])
def test_without_a_campaign_it_is_the_catalogue(locale: str | None, key: str) -> None:
    assert campaign_text(None, locale, key, **VARIABLES) == text(locale, key, **VARIABLES)


@pytest.mark.parametrize("locale", [None, "en", "de", "fi", "zh-Hans"])
def test_a_campaign_without_texts_of_its_own_says_what_the_catalogue_says(locale: str | None) -> None:
    for key in KEYS:
        assert campaign_text(definition(), locale, key, **VARIABLES) == text(locale, key, **VARIABLES)


def test_the_campaigns_text_for_the_contacts_locale_comes_first() -> None:
    campaign = definition(
        en={"ask_comment": "Why, {{ first_name }}?"}, de={"page_thanks": "Danke, {{ company }}!"}
    )
    assert campaign_text(campaign, "en", "ask_comment", **VARIABLES) == "Why, Ana?"
    assert campaign_text(campaign, None, "ask_comment", **VARIABLES) == "Why, Ana?"  # the default locale
    assert campaign_text(campaign, "de", "page_thanks", **VARIABLES) == "Danke, Acme!"
    assert campaign_text(campaign, "de-AT", "page_thanks", **VARIABLES) == "Danke, Acme!"


def test_the_shipped_text_of_the_contacts_language_beats_the_campaigns_default() -> None:
    campaign = definition(en={"ask_comment": "Why?"}, de={"page_thanks": "Danke!"})
    assert campaign_text(campaign, "de", "ask_comment") == text("de", "ask_comment")
    assert campaign_text(campaign, "en", "page_thanks") == text("en", "page_thanks")
    assert campaign_text(campaign, "fr", "page_thanks") == text("fr", "page_thanks")


def test_a_locale_nobody_ships_gets_the_campaigns_default_locale() -> None:
    german = definition("de", de={"ask_comment": "Warum?"})
    assert campaign_text(german, "sv", "ask_comment") == "Warum?"
    assert campaign_text(german, "sv", "thank_you") == text("de", "thank_you")  # shipped German, not English


def test_a_campaign_locale_comes_before_the_default_even_where_nothing_is_shipped() -> None:
    campaign = definition("fr", sv={"ask_comment": "Varför?"})
    assert campaign_text(campaign, "sv-FI", "ask_comment") == "Varför?"
    assert campaign_text(campaign, "sv-FI", "thank_you") == text("fr", "thank_you")


def test_english_comes_last() -> None:
    assert campaign_text(definition("da"), "sv", "thank_you") == text("en", "thank_you")
    assert campaign_text(definition("da", da={"sms": "Hej"}), None, "thank_you") == text("en", "thank_you")


def test_regional_campaign_texts_are_found_like_survey_texts() -> None:
    campaign = definition(pt_BR={"thank_you": "Valeu!"})
    assert campaign_text(campaign, "pt_br", "thank_you") == "Valeu!"
    assert campaign_text(campaign, "pt", "thank_you") == text("pt", "thank_you")  # shipped "pt" is exact
    assert campaign_text(campaign, "pt-PT", "thank_you") == text("pt", "thank_you")
    portuguese = definition(pt={"thank_you": "Obrigado!"})
    assert campaign_text(portuguese, "pt-BR", "thank_you") == "Obrigado!"


@pytest.mark.parametrize("contact_locale", [None, "en", "de", "de-CH", "sv", "pt-BR", "zh-TW"])
def test_survey_texts_come_out_as_texts_for_chooses_them(contact_locale: str | None) -> None:
    campaign = definition("de", de={"sms": "Hallo {{ first_name }}"}, sv={"email_subject": "Hej"})
    _, texts = texts_for(campaign.messages, contact_locale, campaign.locale)
    for name in MESSAGE_FIELDS:
        expected = render(getattr(texts, name), VARIABLES)
        assert campaign_text(campaign, contact_locale, name, **VARIABLES) == expected


def test_a_campaign_text_that_fails_for_a_contact_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    campaign = definition(en={"thank_you": "You have {{ seats * 2 }} seats"})
    assert campaign_text(campaign, "en", "thank_you", seats=3) == "You have 6 seats"
    assert campaign_text(campaign, "en", "thank_you") == text("en", "thank_you")
    assert "campaign's text 'thank_you' of campaign 'pulse' failed" in caplog.text


def test_an_unknown_key_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no_such_text"):
        campaign_text(definition(), "en", "no_such_text")
    with pytest.raises(KeyError, match="no_such_text"):
        campaign_text(None, "en", "no_such_text")


def test_variables_may_be_named_like_the_arguments() -> None:
    campaign = definition(en={"page_score_confirm": "{{ definition }} {{ locale }} {{ key }} {{ score }}"})
    assert campaign_text(
        campaign, "en", "page_score_confirm", definition="d", locale="l", key="k", score=7
    ) == ("d l k 7")


def test_campaign_override_is_only_the_campaigns_own_text_where_it_comes_first() -> None:
    campaign = definition(en={"email_intro": "Thanks for flying with us."})
    assert campaign_override(campaign, "en-GB", "email_intro") == "Thanks for flying with us."
    assert (
        campaign_override(campaign, "sv", "email_intro") == "Thanks for flying with us."
    )  # an English email
    assert campaign_override(campaign, "de", "email_intro") is None  # a German email: no English intro in it
    assert campaign_override(campaign, "de", "question") is None
    assert campaign_override(None, "en", "email_intro") is None


def test_text_language_is_the_language_of_the_texts() -> None:
    assert text_language(None, "zh-TW") == "zh-Hant"
    assert text_language(None, "sv") == "en"
    assert text_language(definition("de"), "sv") == "de"  # Swedish contact, German campaign: German texts
    assert text_language(definition("de"), "fi") == "fi"
    assert text_language(definition("de"), None) == "de"
    assert text_language(definition("da", sv={"sms": "Hej"}), "sv") == "en"


def test_a_campaign_file_override_is_used() -> None:
    file = textwrap.dedent(
        """\
        campaigns:
          - name: pulse
            kind: relationship
            brand: Acme
            messages:
              en: {ask_comment: "What made you say that, {{ first_name }}?"}
              de: {page_thanks: "Herzlichen Dank an {{ company }}!"}
        """
    )
    [campaign] = parse_campaign_file(file).campaigns
    assert campaign_text(campaign, None, "ask_comment", **VARIABLES) == "What made you say that, Ana?"
    assert campaign_text(campaign, "de", "page_thanks", **VARIABLES) == "Herzlichen Dank an Acme!"
    assert campaign_text(campaign, "de", "ask_comment", **VARIABLES) == text("de", "ask_comment")


# --- locale choice ------------------------------------------------------------------------------------------

CUSTOM_DE = MessageTexts(sms="Hallo {{ first_name }}! Eigene Frage.")
CUSTOM_PT_BR = MessageTexts(sms="Oi {{ first_name }}!", email_subject="Assunto BR")


def test_the_contacts_exact_locale_wins() -> None:
    locale, texts = texts_for({"de": CUSTOM_DE}, "de", "en")
    assert locale == "de"
    assert texts.sms == CUSTOM_DE.sms


def test_locale_comparison_ignores_case_and_separator() -> None:
    assert texts_for({"pt-BR": CUSTOM_PT_BR}, "pt_br", "en")[0] == "pt-BR"
    assert texts_for({"pt-BR": CUSTOM_PT_BR}, "PT-br", "en")[1].sms == CUSTOM_PT_BR.sms


def test_a_regional_locale_falls_back_to_its_language() -> None:
    locale, texts = texts_for({}, "pt-BR", "en")
    assert locale == "pt"
    assert texts == SHIPPED_TEXTS["pt"]
    assert texts_for({"de": CUSTOM_DE}, "de-AT", "en")[0] == "de"


def test_a_language_finds_a_regional_variant_of_it() -> None:
    assert texts_for({"sv-SE": MessageTexts(sms="Hej")}, "sv-FI", "en")[0] == "sv-SE"
    assert resolve_locale("pt", ["en", "pt-BR"]) == "pt-BR"


@pytest.mark.parametrize(
    ("contact_locale", "expected"),
    [
        ("zh", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh_SG", "zh-Hans"),
        ("zh-Hans-CN", "zh-Hans"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-MO", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant"),
        ("vi-VN", "vi"),
        ("fi_FI", "fi"),
    ],
)
def test_chinese_contacts_get_texts_in_their_script(contact_locale: str, expected: str) -> None:
    assert texts_for({}, contact_locale, "en") == (expected, SHIPPED_TEXTS[expected])


def test_chinese_variants_are_chosen_by_script() -> None:
    # Like "pt-BR" -> "pt" before "pt-PT": the script's own locale first, then a sibling in the same script.
    assert resolve_locale("zh-HK", ["zh-CN", "zh-Hans", "zh-TW", "zh-Hant"]) == "zh-Hant"
    assert resolve_locale("zh-HK", ["zh-CN", "zh-TW"]) == "zh-TW"
    assert resolve_locale("zh-SG", ["zh-TW", "zh-CN"]) == "zh-CN"
    assert resolve_locale("zh-TW", ["zh-CN", "en"]) == "zh-CN"  # same language, other script: still better
    assert resolve_locale("zh-TW", ["zh", "zh-Hant"]) == "zh-Hant"  # bare "zh" is Simplified


def test_unknown_contact_locale_uses_the_campaign_default() -> None:
    assert texts_for({"de": CUSTOM_DE}, "sv", "de") == ("de", MessageTexts(**_merged(CUSTOM_DE, "de")))
    assert texts_for({}, None, "fr") == ("fr", SHIPPED_TEXTS["fr"])


def test_a_default_without_texts_falls_back_to_english() -> None:
    assert texts_for({}, "sv", "da") == ("en", SHIPPED_TEXTS["en"])
    assert texts_for({}, None, "da") == ("en", SHIPPED_TEXTS["en"])


def test_missing_fields_come_from_the_shipped_texts_of_the_same_locale() -> None:
    _, texts = texts_for({"de": CUSTOM_DE}, "de", "en")
    assert texts.sms == CUSTOM_DE.sms
    assert texts.email_subject == SHIPPED_TEXTS["de"].email_subject
    assert texts.sms_reminder == SHIPPED_TEXTS["de"].sms_reminder


def test_unshipped_locale_fields_come_from_the_campaign_default_then_shipped() -> None:
    messages = {
        "sv": MessageTexts(sms="Hej {{ first_name }}!"),
        "en": MessageTexts(email_subject="Our own subject"),
    }
    locale, texts = texts_for(messages, "sv-SE", "en")
    assert locale == "sv"
    assert texts.sms == "Hej {{ first_name }}!"
    assert texts.email_subject == "Our own subject"
    assert texts.email_intro == SHIPPED_TEXTS["en"].email_intro


def test_every_field_is_always_filled() -> None:
    _, texts = texts_for({"xx": MessageTexts(sms="x")}, "xx", "yy")
    assert all(getattr(texts, name) for name in MESSAGE_FIELDS)


def test_texts_for_ignores_other_catalogue_keys() -> None:
    custom = MessageTexts(sms="Hallo!", others={"ask_comment": "Warum?"})
    assert texts_for({"de": custom}, "de", "en") == texts_for({"de": MessageTexts(sms="Hallo!")}, "de", "en")


# --- the sources of one key ---------------------------------------------------------------------------------


def test_text_sources_follow_the_campaign_fallback_order() -> None:
    messages = {
        "sv": MessageTexts(others={"ask_comment": "Varför?"}),
        "de": MessageTexts(others={"help": "Hilfe"}),
    }
    assert choose_locales(messages, "sv-FI", "de") == ("sv", "de")
    assert text_sources(messages, "sv-FI", "de", "ask_comment") == [
        ("Varför?", True),
        (shipped_text("de", "ask_comment"), False),
        (shipped_text("en", "ask_comment"), False),
    ]
    assert text_sources(messages, "sv", "de", "help") == [
        ("Hilfe", True),
        (shipped_text("de", "help"), False),
        (shipped_text("en", "help"), False),
    ]
    assert text_sources(messages, "fr", "de", "help") == [
        (shipped_text("fr", "help"), False),
        ("Hilfe", True),
        (shipped_text("de", "help"), False),
        (shipped_text("en", "help"), False),
    ]
    assert text_sources(messages, "fr", "de", "no_such_key") == []


@pytest.mark.parametrize("contact_locale", [None, "de", "de-AT", "sv", "pt-BR", "zh-TW", "xx"])
def test_texts_for_is_the_first_source_of_each_survey_text(contact_locale: str | None) -> None:
    messages = {
        "sv": MessageTexts(sms="Hej"),
        "de": MessageTexts(email_subject="Betreff"),
        "pt-BR": CUSTOM_PT_BR,
    }
    _, texts = texts_for(messages, contact_locale, "de")
    for name in MESSAGE_FIELDS:
        assert getattr(texts, name) == text_sources(messages, contact_locale, "de", name)[0][0]


def _merged(custom: MessageTexts, locale: str) -> dict[str, str | None]:
    shipped = SHIPPED_TEXTS[locale]
    return {name: getattr(custom, name) or getattr(shipped, name) for name in MESSAGE_FIELDS}


# --- per category -------------------------------------------------------------------------------------------


def test_per_category_keys_go_from_the_most_specific_to_the_text_used_before_categories() -> None:
    assert question_keys("detractor", "ask_comment") == ("follow_up_detractor", "ask_comment")
    assert question_keys(None, "page_comment_label") == ("page_comment_label",)
    assert closing_keys("detractor", "thank_you", contact=True) == (
        "closing_detractor_contact",
        "closing_detractor",
        "thank_you",
    )
    assert closing_keys("detractor", "thank_you", link=True) == ("closing_detractor", "thank_you")
    assert closing_keys("promoter", "page_thanks", contact=True) == ("closing_promoter", "page_thanks")
    assert closing_keys("promoter", "thank_you", link=True)[0] == "closing_promoter_link"
    assert set(question_keys("passive", "x") + closing_keys("passive", "x", contact=True)) <= {*KEYS, "x"}


def test_first_text_takes_the_campaigns_own_text_of_the_first_key_it_wrote_else_the_shipped_first() -> None:
    keys = ("closing_detractor_contact", "closing_detractor", "thank_you")
    own = definition(en={"thank_you": "Cheers!"}, de={"closing_detractor": "Danke trotzdem!"})
    assert contact_texts(own, "en").first_text(keys) == "Cheers!"
    assert contact_texts(own, "de").first_text(keys) == "Danke trotzdem!"
    assert contact_texts(own, "fr").first_text(keys) == text("fr", "closing_detractor_contact")
    assert contact_texts(None, "vi").first_text(keys) == text("vi", "closing_detractor_contact")
