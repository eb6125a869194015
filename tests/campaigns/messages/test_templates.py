from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.sandbox import SandboxedEnvironment

from campaigns.messages.catalogue import (
    LOCALES,
    MESSAGE_FIELDS,
    SHIPPED_TEXTS,
    MessageTexts,
    locale_file,
)
from campaigns.messages.names import first_name
from campaigns.messages.templates import (
    ENVIRONMENT,
    SAMPLE_VARIABLES,
    TemplateProblem,
    render,
    sms_segments,
    template_syntax_problem,
    template_variables,
)

URL = "https://nps.example.com/s/abc"
LONG_NAME = "Maximiliana-Josephina von Wolkenstein-Trostburg"
LONG_COMPANY = "Internationale Handelsgesellschaft GmbH"

# --- the environment ----------------------------------------------------------------------------------------


def test_the_environment_is_a_sandbox_without_autoescaping() -> None:
    assert isinstance(ENVIRONMENT, SandboxedEnvironment)
    assert ENVIRONMENT.autoescape is False
    assert ENVIRONMENT.keep_trailing_newline is False


# --- shipped texts ------------------------------------------------------------------------------------------


# Scripts outside the GSM alphabet: always UCS-2 (70 characters a segment), so these are kept short instead.
UCS2_LOCALES = {"vi", "zh-Hans", "zh-Hant", "ar"}


def test_shipped_locales_cover_the_main_languages() -> None:
    assert {"en", "de", "fr", "es", "pt", "nl", "it"} <= set(SHIPPED_TEXTS)
    assert {"zh-Hans", "zh-Hant", "vi", "fi"} <= set(SHIPPED_TEXTS)
    assert "ar" in SHIPPED_TEXTS  # right to left


def test_shipped_texts_come_from_the_message_catalogue() -> None:
    assert list(SHIPPED_TEXTS) == list(LOCALES)
    for locale, texts in SHIPPED_TEXTS.items():
        assert texts == MessageTexts(**{name: locale_file(locale)[name] for name in MESSAGE_FIELDS})


@pytest.mark.parametrize("locale", sorted(SHIPPED_TEXTS))
def test_shipped_texts_are_complete_and_compile(locale: str) -> None:
    texts = SHIPPED_TEXTS[locale]
    for name in MESSAGE_FIELDS:
        source = getattr(texts, name)
        assert source, f"{locale}.{name} is missing"
        assert template_syntax_problem(source) is None


# Invitation texts are one segment in every shipped locale with typical names. Chinese has no GSM-7 form, so
# it is UCS-2 (70 characters), and kept short enough. Vietnamese texts are written without tone marks ("tin
# nhắn không dấu", as Vietnamese SMS usually is): with them they are UCS-2 and two segments (94 characters).
# Arabic is UCS-2 too, and its invitation is written to fit 70 characters with typical names.
# Only long names and company names may take a second segment (the test below).
INVITATION_ENCODING = {"zh-Hans": "UCS-2", "zh-Hant": "UCS-2", "ar": "UCS-2"}


@pytest.mark.parametrize("locale", sorted(SHIPPED_TEXTS))
@pytest.mark.parametrize("name", ["sms", "sms_reminder"])
def test_shipped_invitations_fit_one_segment_for_typical_names(locale: str, name: str) -> None:
    text = render(getattr(SHIPPED_TEXTS[locale], name), SAMPLE_VARIABLES)
    assert sms_segments(text) == (1, INVITATION_ENCODING.get(locale, "GSM-7")), text
    assert "Alexandra" in text
    assert "Example Company" in text
    assert "STOP" in text
    assert "10" in text


@pytest.mark.parametrize("locale", sorted(SHIPPED_TEXTS))
@pytest.mark.parametrize("name", ["sms", "sms_reminder"])
def test_shipped_sms_stays_within_two_segments_for_long_names(locale: str, name: str) -> None:
    variables = template_variables(LONG_NAME, {"company": LONG_COMPANY}, None, URL)
    text = render(getattr(SHIPPED_TEXTS[locale], name), variables)
    count, _ = sms_segments(text)
    assert count <= 2, text
    assert LONG_COMPANY in text


@pytest.mark.parametrize("locale", sorted(SHIPPED_TEXTS))
def test_shipped_texts_read_well_without_a_name_or_company(locale: str) -> None:
    variables = template_variables(None, {}, None, URL)
    for name in MESSAGE_FIELDS:
        text = render(getattr(SHIPPED_TEXTS[locale], name), variables)
        assert text
        assert "  " not in text
        assert " ," not in text
        assert not text.startswith(","), text
        assert "None" not in text


def test_shipped_english_invite_reads_naturally() -> None:
    text = render(SHIPPED_TEXTS["en"].sms or "", template_variables("Ada Lovelace", {}, "Acme", URL))
    assert text == (
        "Hi Ada, how likely are you to recommend Acme to a friend or colleague? Reply 0-10. Reply STOP to opt out."
    )
    anonymous = render(SHIPPED_TEXTS["en"].sms or "", template_variables(None, {}, None, URL))
    assert anonymous.startswith("Hi, how likely are you to recommend us to a friend")


# --- variables ----------------------------------------------------------------------------------------------


def test_variables_hold_names_company_url_and_every_property() -> None:
    variables = template_variables(
        "  Ada  King Lovelace ", {"plan": "pro", "account manager": "Bob"}, "Acme", URL
    )
    assert variables["first_name"] == "Ada"
    assert variables["name"] == "Ada  King Lovelace"
    assert variables["company"] == "Acme"
    assert variables["brand"] == "Acme"
    assert variables["survey_url"] == URL
    assert variables["plan"] == "pro"
    assert variables["properties"] == {"plan": "pro", "account manager": "Bob"}


def test_company_property_beats_the_brand() -> None:
    assert template_variables(None, {"company": " Initech "}, "Acme", URL)["company"] == "Initech"
    assert template_variables(None, {"company": ""}, "Acme", URL)["company"] == "Acme"
    assert template_variables(None, {}, None, URL)["company"] == ""


def test_built_in_names_win_over_properties_of_the_same_name() -> None:
    variables = template_variables("Ada", {"name": "Eve", "survey_url": "x"}, None, URL)
    assert variables["name"] == "Ada"
    assert variables["survey_url"] == URL
    assert variables["properties"] == {"name": "Eve", "survey_url": "x"}


@pytest.mark.parametrize(
    ("name", "locale", "expected"),
    [
        ("Ana Lima", "en", "Ana"),
        ("Ana Lima", None, "Ana"),
        ("Jean-Luc Picard", "fr-CA", "Jean-Luc"),
        ("Nguyễn Văn An", "vi", "An"),
        ("Nguyễn Văn An", "vi-VN", "An"),
        ("Trần Thị Mai", "vi_VN", "Mai"),
        ("王小明", "zh-Hans", "王小明"),
        ("陳 大文", "zh-TW", "陳 大文"),
        ("山田 太郎", "ja", "山田 太郎"),
        ("김 민준", "ko-KR", "김 민준"),
        ("山田 太郎", None, "山田 太郎"),  # written in CJK script: greeted in full whatever the locale
        ("David Wang", "zh-Hans", "David Wang"),
        ("  ", "vi", ""),
        (None, "ja", ""),
    ],
)
def test_the_default_first_name_follows_the_contacts_locale(
    name: str | None, locale: str | None, expected: str
) -> None:
    assert first_name(name, locale) == expected
    assert template_variables(name, {}, None, URL, locale=locale)["first_name"] == expected


@pytest.mark.parametrize("key", ["first_name", "First Name", "FIRST_NAME", "first-name"])
def test_an_imported_first_name_wins_over_the_derived_one(key: str) -> None:
    variables = template_variables("Nguyễn Văn An", {key: " Bé An "}, None, URL, locale="vi")
    assert variables["first_name"] == "Bé An"


def test_an_empty_imported_first_name_falls_back_to_the_derived_one() -> None:
    assert template_variables("Ana Lima", {"first_name": " "}, None, URL)["first_name"] == "Ana"


def test_no_name_gives_empty_names() -> None:
    variables = template_variables(None, {}, None, URL)
    assert variables["first_name"] == ""
    assert variables["name"] == ""


# --- rendering ----------------------------------------------------------------------------------------------


def test_render_personalises() -> None:
    variables = template_variables("Ada Lovelace", {"plan": "pro"}, "Acme", URL)
    assert render("Hi {{ first_name }} from {{ company }} ({{ plan }}): {{ survey_url }}", variables) == (
        f"Hi Ada from Acme (pro): {URL}"
    )


def test_missing_values_render_empty_and_leave_no_double_spaces() -> None:
    variables = template_variables(None, {}, None, URL)
    assert render("Hi {{ first_name }} , your {{ plan }} plan  ", variables) == "Hi, your plan"
    assert render("{{ plan.tier.name }}|{{ plan.upper() }}|{{ properties.plan }}", variables) == "||"


def test_line_breaks_are_kept() -> None:
    assert render("Hello {{ x }}\n\nSecond paragraph\n", {}) == "Hello\n\nSecond paragraph"


def test_non_identifier_property_names_are_reachable_through_properties() -> None:
    variables = template_variables("Ada", {"account manager": "Bob", "2fa": "on"}, None, URL)
    assert render("{{ properties['account manager'] }} / {{ properties['2fa'] }}", variables) == "Bob / on"
    assert render("{{ properties['no such'] }}", variables) == ""


def test_filters_and_conditions_work() -> None:
    variables = template_variables("ada", {"plan": "pro"}, None, URL)
    source = "{{ first_name|title }}{% if plan == 'pro' %}, Pro customer{% endif %}"
    assert render(source, variables) == "Ada, Pro customer"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
        "{{ lipsum.__globals__['os'].system('touch {marker}') }}",
        "{% if ''.__class__ %}yes{% endif %}",
        "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
        "{{ '{0.__class__}'.format(first_name) }}",
        "{{ properties.clear() }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_sandbox_escapes_are_refused_and_never_executed(source: str, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    with pytest.raises(TemplateProblem) as caught:
        render(source.replace("{marker}", str(marker)), SAMPLE_VARIABLES)
    assert caught.value.security
    assert "sandbox" in caught.value.message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ missing + 1 }}", "missing value"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ first_name ", "template syntax error on line 1"),
        ("Hello\n{{ first_name }", "template syntax error on line 2: unexpected '}'"),
        ("{% if x %}no end", "template syntax error on line 1: Unexpected end of template"),
    ],
)
def test_runtime_and_syntax_errors_become_template_problems(source: str, expected: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        render(source, SAMPLE_VARIABLES)
    assert expected in caught.value.message
    assert not caught.value.security


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        # 30 million characters from a loop, directly or through a {% set %} block
        (
            "{% for i in range(1000) %}{% for j in range(1000) %}{{ 'x' * 30 }}{% endfor %}{% endfor %}",
            "writes more than 10,000 characters",
        ),
        (
            "{% set page %}{% for i in range(1000) %}{{ 'y' * 100 }}{% endfor %}{% endset %}{{ page|length }}",
            "writes more than 10,000 characters",
        ),
        # values built in one go, refused before they are built
        ("{{ 'x' * 30000000 }}", "builds a value of more than 10,000 characters"),
        ("{{ ['x'] * 30000000 }}", "builds a value of more than 10,000 characters"),
        ("{% set a = 'x' * 6000 %}{{ (a ~ a)|length }}", "builds a value of more than 10,000 characters"),
        ("{% set a = 'x' * 6000 %}{{ (a + a)|length }}", "builds a value of more than 10,000 characters"),
        ("{{ ('x' * 5000)|replace('x', 'xxxxx') }}", "builds a value of more than 10,000 characters"),
        ("{{ ('x' * 5000).replace('', 'xxxxx') }}", "builds a value of more than 10,000 characters"),
        ("{{ 10 ** 100000 }}", "computes a number of more than 4,096 bits"),
        # sizes given as numbers
        ("{{ 'x'|center(30000000) }}", "uses the number 3e+07 where at most 1,000 is allowed"),
        ("{{ 'x'.rjust(30000000) }}", "uses the number 3e+07"),
        ("{{ 'x'|indent(30000000, true) }}", "uses the number 3e+07"),
        ("{{ [1]|batch(30000000, 'x')|list }}", "uses the number 3e+07"),
        ("{{ '%30000000s' % 'x' }}", "uses the number 3e+07"),
        ("{{ '%30000000s'|format('x') }}", "uses the number 3e+07"),
        ("{{ '{:>30000000}'.format('x') }}", "uses the number 3e+07"),
        ("{{ '%*s' % (30000000, 'x') }}", "takes a format width from a value"),
        ("{{ range(10 ** 9)|list }}", "uses the number 1e+09"),
        (
            "{{ range(1000)|join('x' * 9000) }}",
            "uses a text of 9,000 characters where at most 1,000 is allowed",
        ),
        ("{{ ('x ' * 4000)|wordwrap(1, wrapstring='y' * 9000) }}", "uses a text of 9,000 characters"),
        ("{{ lipsum(100000) }}", "uses the number 100000"),
        # work that writes nothing still ends
        (
            "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
            "takes more than 100,000 steps",
        ),
        (
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(20) }}",
            "takes more than 100,000 steps",
        ),
    ],
)
def test_one_render_stays_within_the_sandbox_limits(source: str, limit: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        render(source, SAMPLE_VARIABLES)
    assert caught.value.security
    assert caught.value.message == f"the template {limit}" or caught.value.message.startswith(
        f"the template {limit}"
    )


def test_templates_within_the_limits_render_as_before() -> None:
    variables = template_variables("Ada Lovelace", {f"p{i}": "v" * 100 for i in range(50)}, "Acme", URL)
    listing = "{% for key, value in properties|dictsort %}{{ key }}={{ value }}\n{% endfor %}"
    assert len(render(listing, variables).splitlines()) == 50
    assert render("{{ 'x' * 9000 }}", variables) == "x" * 9000
    assert render("{{ '%05d|%.2f' % (7, 1) }} {{ '{:04}'.format(7) }}", variables) == "00007|1.00 0007"
    assert render("{{ seats }} {{ '{:,}'.format(12345) }}", {"seats": 10**6}) == "1000000 12,345"
    assert render("{% for i in range(3) %}{{ loop.index }}{% endfor %}", variables) == "123"


def test_a_template_source_may_be_5000_characters() -> None:
    assert render("x" * 5000, SAMPLE_VARIABLES) == "x" * 5000
    with pytest.raises(TemplateProblem) as caught:
        render("x" * 5001, SAMPLE_VARIABLES)
    assert caught.value.security
    assert caught.value.message == "the template is too long (5,001 characters; at most 5,000)"
    assert template_syntax_problem("x" * 5001) == caught.value.message


def test_template_syntax_problem() -> None:
    assert template_syntax_problem("Hi {{ first_name }}") is None
    assert template_syntax_problem("Hi {{ first_name }") == (
        "template syntax error on line 1: unexpected '}'"
    )
