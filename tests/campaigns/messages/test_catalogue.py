from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import jinja2.meta
import pytest

import campaigns.messages.catalogue as catalogue_module
from campaigns.messages.catalogue import (
    KEYS,
    LOCALES,
    CatalogueError,
    MessageTexts,
    catalogue,
    locale_file,
    resolve,
    shipped_text,
)
from campaigns.messages.locales import FALLBACK_LOCALE
from campaigns.messages.templates import (
    ENVIRONMENT,
    SAMPLE_VARIABLES,
    sms_segments,
    template_syntax_problem,
    template_variables,
)
from campaigns.messages.texts import text
from campaigns.replies.number_words import NUMBER_WORD_LANGUAGES

ROOT = Path(__file__).resolve().parents[3]
CATALOGUE_DIR = ROOT / "campaigns" / "messages" / "translations"

PER_CATEGORY_KEYS = [
    "follow_up_detractor",
    "follow_up_passive",
    "follow_up_promoter",
    "closing_detractor",
    "closing_detractor_contact",
    "closing_passive",
    "closing_promoter",
    "closing_promoter_link",
    "page_promoter_link",
]
REQUIRED_LOCALES = {"en", "es", "fr", "de", "zh-Hans", "zh-Hant", "vi", "fi", "pt", "nl", "it", "ar"}
REQUIRED_KEYS = {
    # survey invitations (also campaigns.messages.catalogue.SHIPPED_TEXTS)
    "sms",
    "sms_reminder",
    "email_subject",
    "email_intro",
    "email_reminder_subject",
    # SMS conversation
    "ask_comment",
    "thank_you",
    "thank_you_late",
    "clarify",
    "unknown_number",
    "help",
    "opted_out",
    "opted_in",
    # email body
    "email_greeting",
    "question",
    "scale_low",
    "scale_high",
    "unsubscribe",
    "unsubscribe_note",
    # survey page
    "page_title",
    "page_question",
    "page_score_confirm",
    "page_confirm_button",
    "page_comment_label",
    "page_comment_placeholder",
    "page_submit",
    "page_skip",
    "page_thanks",
    "page_expired",
    "page_unknown",
    "page_already_answered",
    "page_unsubscribed",
    "page_unsubscribe_confirm",
    "page_unsubscribe_button",
    "page_change_score",
    # per category: the follow-up question and the closing (SMS and survey page)
    *PER_CATEGORY_KEYS,
}
CONVERSATION_KEYS = [
    "ask_comment",
    "thank_you",
    "thank_you_late",
    "clarify",
    "unknown_number",
    "help",
    "opted_out",
    "opted_in",
    *(key for key in PER_CATEGORY_KEYS if key not in ("closing_promoter_link", "page_promoter_link")),
]
UCS2_LOCALES = {"vi", "zh-Hans", "zh-Hant", "ar"}
EMPTY = template_variables(None, {}, None, "")
LINK = "https://g.page/r/CabcdefghijklmnoEAI/review"
FULL = {
    **template_variables("Alexandra Sample", {}, "Example Company", ""),
    "score": 7,
    "promoter_link": LINK,
}


def _placeholders(source: str) -> set[str]:
    return set(jinja2.meta.find_undeclared_variables(ENVIRONMENT.parse(source)))


# --- the files ----------------------------------------------------------------------------------------------


def test_every_required_locale_is_shipped_with_english_first() -> None:
    assert set(LOCALES) >= REQUIRED_LOCALES
    assert LOCALES[0] == FALLBACK_LOCALE
    assert sorted(path.stem for path in CATALOGUE_DIR.glob("*.yaml")) == sorted(LOCALES)


def test_english_has_every_required_key() -> None:
    assert set(KEYS) == set(locale_file("en"))
    assert set(KEYS) >= REQUIRED_KEYS


@pytest.mark.parametrize("locale", LOCALES)
def test_every_locale_has_exactly_the_english_keys_all_filled(locale: str) -> None:
    texts = locale_file(locale)
    assert set(texts) == set(KEYS), (
        f"{locale}.yaml: missing {set(KEYS) - set(texts)}, extra {set(texts) - set(KEYS)}"
    )
    assert all(value.strip() for value in texts.values())


@pytest.mark.parametrize("locale", LOCALES)
def test_every_text_compiles_and_uses_only_placeholders_english_uses(locale: str) -> None:
    english = locale_file("en")
    for key, source in locale_file(locale).items():
        assert template_syntax_problem(source) is None, f"{locale}.{key}: {template_syntax_problem(source)}"
        unknown = _placeholders(source) - _placeholders(english[key])
        assert not unknown, f"{locale}.{key} uses {unknown}, which en.{key} does not"


@pytest.mark.parametrize("locale", LOCALES)
def test_texts_read_well_without_a_name_or_company(locale: str) -> None:
    for key in KEYS:
        rendered = text(locale, key, **EMPTY)
        assert rendered, f"{locale}.{key}"
        assert "  " not in rendered and " ," not in rendered and "None" not in rendered, rendered
        assert rendered[0] not in ",.:;，：", rendered
        assert "{" not in rendered and "}" not in rendered, rendered


@pytest.mark.parametrize("locale", LOCALES)
def test_texts_show_the_values_english_shows(locale: str) -> None:
    english = locale_file("en")
    shown = {"company": "Example Company", "first_name": "Alexandra", "score": "7", "promoter_link": LINK}
    for key in KEYS:
        rendered = text(locale, key, **FULL)
        for variable in _placeholders(english[key]) & set(shown):
            assert shown[variable] in rendered, f"{locale}.{key} does not show {variable}: {rendered}"


@pytest.mark.parametrize("locale", LOCALES)
def test_sms_texts_say_how_to_answer_and_how_to_stop(locale: str) -> None:
    for key in ("sms", "sms_reminder", "help", "opted_in"):
        assert "STOP" in text(locale, key, **FULL), f"{locale}.{key}"
    assert "START" in text(locale, "opted_out", **FULL)
    unknown = text(locale, "unknown_number", **FULL)
    assert "HELP" in unknown and "STOP" in unknown
    for key in ("sms", "sms_reminder", "clarify", "help"):
        rendered = text(locale, key, **FULL)
        assert "0" in rendered and "10" in rendered, f"{locale}.{key}: {rendered}"
    assert "Example Company" in text(locale, "help", **FULL)


@pytest.mark.parametrize("locale", LOCALES)
def test_conversation_replies_fit_one_segment_where_the_script_allows(locale: str) -> None:
    limit = 2 if locale in UCS2_LOCALES else 1
    for key in CONVERSATION_KEYS:
        rendered = text(locale, key, **SAMPLE_VARIABLES)
        assert sms_segments(rendered)[0] <= limit, f"{locale}.{key}: {rendered}"


@pytest.mark.parametrize("locale", LOCALES)
def test_the_promoter_closing_with_a_review_link_fits_two_segments(locale: str) -> None:
    rendered = text(locale, "closing_promoter_link", **FULL)
    assert rendered.endswith(LINK) and sms_segments(rendered)[0] <= 2, f"{locale}: {rendered}"


def test_the_arabic_catalogue_is_written_in_arabic() -> None:
    """Every Arabic text has Arabic letters: nothing was left in English for a right-to-left page."""
    for key, source in locale_file("ar").items():
        assert any("\u0600" <= char <= "\u06ff" for char in source), f"ar.{key}: {source}"


def test_the_survey_page_asks_the_email_question() -> None:
    for locale in LOCALES:
        assert locale_file(locale)["page_question"] == locale_file(locale)["question"], locale


@pytest.mark.parametrize("locale", LOCALES)
def test_the_reply_parser_knows_the_number_words_of_every_locale(locale: str) -> None:
    assert locale.split("-")[0] in NUMBER_WORD_LANGUAGES


def test_the_files_are_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "messages/translations/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["campaigns"]


# --- locale choice ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("  ", "en"),
        ("en", "en"),
        ("en-US", "en"),
        ("de-AT", "de"),
        ("pt-BR", "pt"),
        ("pt_br", "pt"),
        ("PT", "pt"),
        ("fi_FI.UTF-8", "fi"),
        ("vi-VN", "vi"),
        ("zh", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh-Hans", "zh-Hans"),
        ("zh-hans-cn", "zh-Hans"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh_MO", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant"),
        ("zh-Hant-HK", "zh-Hant"),
        ("sv", "en"),
        ("xx-YY", "en"),
        ("-", "en"),
        ("!!!", "en"),
    ],
)
def test_resolve(wanted: str | None, expected: str) -> None:
    assert resolve(wanted) == expected


def test_catalogue_of_a_regional_locale_is_its_languages() -> None:
    assert catalogue("pt-BR") == locale_file("pt")
    assert catalogue("zh-TW") == locale_file("zh-Hant")
    assert catalogue("sv-SE") == locale_file("en")
    assert catalogue(None) == locale_file("en")


# --- rendering ----------------------------------------------------------------------------------------------


def test_shipped_text_never_falls_back_to_english() -> None:
    assert shipped_text("de-AT", "thank_you") == locale_file("de")["thank_you"]
    assert shipped_text("en-GB", "thank_you") == locale_file("en")["thank_you"]
    assert shipped_text("zh-TW", "help") == locale_file("zh-Hant")["help"]
    assert shipped_text("sv", "thank_you") is None  # not shipped: the caller decides what comes next
    assert shipped_text(None, "thank_you") is None
    assert shipped_text("de", "no_such_key") is None


def test_text_renders_placeholders() -> None:
    assert text("en", "page_score_confirm", score=9) == "You chose 9. Please confirm your score."
    assert text("en", "email_greeting", first_name="Ada") == "Hi Ada,"
    assert text("en", "email_greeting") == "Hello,"
    assert text("de-AT", "help", company="Acme").startswith("Kundenumfrage von Acme:")
    assert text("zh-TW", "help", company="Acme").startswith("Acme客戶調查")
    assert text("en", "question") == "How likely are you to recommend us to a friend or colleague?"


def test_text_takes_variables_named_like_its_own_arguments() -> None:
    # Contact properties become variables; a property called "locale" or "key" must not clash.
    assert text("en", "thank_you", locale="fr", key="x") == "Thank you for your feedback!"


def test_an_unknown_key_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no catalogue text 'nope'"):
        text("en", "nope")


# --- a campaign's texts of one locale ---------------------------------------------------------------------


def test_message_texts_hold_any_catalogue_key() -> None:
    texts = MessageTexts.from_mapping({"sms": "Hi", "ask_comment": "Why?", "email_intro": None})
    assert texts == MessageTexts(sms="Hi", others={"ask_comment": "Why?"})
    assert (texts.get("sms"), texts.get("ask_comment"), texts.get("email_intro"), texts.get("help")) == (
        "Hi",
        "Why?",
        None,
        None,
    )
    assert texts.as_mapping() == {"sms": "Hi", "ask_comment": "Why?"}
    assert MessageTexts().as_mapping() == {}
    assert hash(texts) == hash(MessageTexts(sms="Hi"))  # still usable as a key, like before


def test_message_texts_keep_their_own_copy_of_others() -> None:
    others = {"thank_you": "Ta"}
    texts = MessageTexts(others=others)
    others["thank_you"] = "changed"
    assert texts.get("thank_you") == "Ta"


def test_survey_texts_are_fields_not_others() -> None:
    with pytest.raises(ValueError, match="sms must be given as fields"):
        MessageTexts(others={"sms": "Hi"})


# --- editing the files: a translator's mistakes -------------------------------------------------------------


class Files:
    """A catalogue directory of our own, starting with a copy of the English file."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.monkeypatch = monkeypatch
        (path / "en.yaml").write_text(
            (CATALOGUE_DIR / "en.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )

    def write(self, name: str, content: str) -> None:
        (self.path / name).write_text(content, encoding="utf-8")

    def reload(self) -> None:
        """What a restart does: read the directory again."""
        _clear_caches()
        self.monkeypatch.setattr(catalogue_module, "LOCALES", catalogue_module._shipped_locales())


def _clear_caches() -> None:
    for cached in (
        catalogue_module._files,
        catalogue_module.locale_file,
        catalogue_module.resolve,
        catalogue_module.catalogue,
        catalogue_module._own_texts,
    ):
        cached.cache_clear()


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Files]:
    monkeypatch.setattr(catalogue_module, "_directory", lambda: tmp_path)
    _clear_caches()
    yield Files(tmp_path, monkeypatch)
    monkeypatch.undo()
    _clear_caches()


def test_a_new_file_is_a_new_locale_and_missing_keys_fall_back_per_key(files: Files) -> None:
    files.write("sv.yaml", 'thank_you: "Tack för din feedback!"\nclarify: ""\n')
    files.write("pt.yaml", 'thank_you: "Obrigado!"\nhelp: "Ajuda"\n')
    files.write("pt-BR.yaml", 'thank_you: "Valeu!"\n')
    files.reload()
    assert catalogue_module.LOCALES == ("en", "pt", "pt-BR", "sv")
    assert resolve("sv-FI") == "sv"
    assert text("sv", "thank_you") == "Tack för din feedback!"
    assert text("sv", "clarify") == text("en", "clarify")  # empty: English
    assert text("sv", "ask_comment") == text("en", "ask_comment")  # missing: English
    assert text("pt-BR", "thank_you") == "Valeu!"
    assert text("pt-BR", "help") == "Ajuda"  # from pt
    assert text("pt-PT", "thank_you") == "Obrigado!"
    assert shipped_text("pt-BR", "help") == "Ajuda"  # per key from the less specific file
    assert shipped_text("sv", "ask_comment") is None  # and never from English


def test_values_stay_text_whatever_yaml_would_make_of_them(files: Files) -> None:
    files.write("nb.yaml", "page_submit: no\npage_skip: 2024-01-01\nunsubscribe: 1e3\n")
    files.reload()
    assert text("nb", "page_submit") == "no"
    assert text("nb", "page_skip") == "2024-01-01"
    assert text("nb", "unsubscribe") == "1e3"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("thank_you: [a, b]\n", "sv.yaml: thank_you: must be a text"),
        ("- just\n- a list\n", "sv.yaml: must be a mapping"),
        ('thank_you: "unclosed\n', "sv.yaml: cannot be read"),
    ],
)
def test_a_broken_file_is_reported_with_its_name(files: Files, content: str, message: str) -> None:
    files.write("sv.yaml", content)
    files.reload()
    with pytest.raises(CatalogueError, match=message):
        text("sv", "thank_you")


def test_a_text_that_fails_to_render_falls_back_to_english(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    files.write("sv.yaml", 'thank_you: "Tack {{ 1 / 0 }}"\n')
    files.reload()
    assert text("sv", "thank_you") == "Thank you for your feedback!"
    assert "failed" in caplog.text


def test_the_english_file_is_required(files: Files) -> None:
    (files.path / "en.yaml").unlink()
    with pytest.raises(CatalogueError, match=r"en\.yaml is missing"):
        files.reload()
