from pathlib import Path

import pytest

from service.settings import Settings, SettingsError, load_settings, parse_settings


def test_defaults_match_the_contract() -> None:
    s = parse_settings({})
    assert s.database_url == "sqlite:///./nps.db"
    assert s.public_base_url == "http://localhost:8000"
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.twilio_api_url == "https://api.twilio.com"
    assert (s.min_days_between_surveys, s.tick_seconds, s.timezone) == (90, 15, "UTC")
    assert not (s.slack_enabled or s.twilio_enabled or s.smtp_enabled)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PUBLIC_BASE_URL": "localhost:8000"}, "PUBLIC_BASE_URL"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"NPS_TIMEZONE": "Mars/Olympus"}, "NPS_TIMEZONE"),
        ({"NPS_TICK_SECONDS": "0"}, "NPS_TICK_SECONDS"),
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_AUTH_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SMTP_HOST": "mail.example.com"}, "EMAIL_FROM"),
        ({"TWILIO_AUTH_TOKEN": "s3cret-token"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_FROM_NUMBER": "+15005550006"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "MG123"}, "TWILIO_ACCOUNT_SID"),
        ({"EMAIL_FROM": "surveys@example.com"}, "SMTP_HOST"),
        ({"SMTP_USERNAME": "mailer"}, "SMTP_HOST"),
        (
            {"SMTP_HOST": "mail.example.com", "EMAIL_FROM": "s@example.com", "SMTP_USERNAME": "mailer"},
            "SMTP_PASSWORD",
        ),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LIBRARIES": "chatty"}, "LOG_LIBRARIES"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        parse_settings(env)


def test_secrets_are_never_echoed() -> None:
    with pytest.raises(SettingsError) as error:
        parse_settings({"DATABASE_URL": "postgresql+psycopg://u:hunter2@/db?x=%zz", "PORT": "x"})
    assert "hunter2" not in str(error.value)
    settings = parse_settings(
        {
            "TWILIO_ACCOUNT_SID": "AC1",
            "TWILIO_AUTH_TOKEN": "s3cret-token",
            "TWILIO_FROM_NUMBER": "+15005550006",
        }
    )
    assert "s3cret-token" not in repr(settings)
    assert "s3cret-token" not in str(settings.describe())


def test_booleans_lists_and_trailing_slashes() -> None:
    s = parse_settings(
        {
            "SMTP_STARTTLS": "False",
            "SLACK_ADMIN_USERS": "U1, U2,,",
            "SLACK_API_URL": "http://127.0.0.1:9000/api",
            "PUBLIC_BASE_URL": "https://nps.example.com/",
        }
    )
    assert s.smtp_starttls is False
    assert s.slack_admin_users == ("U1", "U2")
    assert s.slack_api_url == "http://127.0.0.1:9000/api/"
    assert s.public_base_url == "https://nps.example.com"


def test_responders_are_slack_ids() -> None:
    s = parse_settings(
        {
            "SLACK_RESPONDERS": "U0ANA, W0BEN",
            "SLACK_RESPONDER_GROUP": "S0SUPPORT",
            "SLACK_PERSONAL_DATA": "admins",
        }
    )
    assert (s.slack_responders, s.slack_responder_group, s.slack_personal_data) == (
        ("U0ANA", "W0BEN"),
        "S0SUPPORT",
        "admins",
    )
    assert parse_settings({}).slack_personal_data == "responders"
    for env, message in [
        (
            {"SLACK_RESPONDERS": "U0ANA,@ben"},
            "SLACK_RESPONDERS takes Slack user ids such as U0123ABCD, got '@ben'",
        ),
        ({"SLACK_RESPONDER_GROUP": "@support"}, "SLACK_RESPONDER_GROUP takes Slack user group ids"),
        ({"SLACK_RESPONDER_GROUP": "S0A,S0B"}, "SLACK_RESPONDER_GROUP takes one Slack user group id"),
        ({"SLACK_PERSONAL_DATA": "everyone"}, "SLACK_PERSONAL_DATA must be one of RESPONDERS, ADMINS"),
    ]:
        with pytest.raises(SettingsError, match=message):
            parse_settings(env)


def test_the_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9000\nNPS_TIMEZONE=Europe/Berlin\n")
    s = load_settings({"PORT": "9100"}, env_file=env_file)
    assert (s.port, s.timezone) == (9100, "Europe/Berlin")


def test_every_variable_is_documented_in_the_example_file() -> None:
    example = (Path(__file__).parents[2] / "config.example.env").read_text()
    documented = {line.split("=")[0].lstrip("# ").strip() for line in example.splitlines() if "=" in line}
    source = (Path(__file__).parents[2] / "service" / "settings.py").read_text()
    import re

    read = set(re.findall(r'r\.\w+\("([A-Z_]+)"', source))
    assert read <= documented, f"undocumented: {sorted(read - documented)}"
    assert isinstance(parse_settings({}), Settings)


def test_admin_notices_need_slack_and_an_admin_channel() -> None:
    slack = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    assert parse_settings({"SLACK_ADMIN_CHANNEL": "C0OPS"}).admin_notices is False  # no Slack: logged only
    assert parse_settings(slack).admin_notices is False
    configured = parse_settings({**slack, "SLACK_ADMIN_CHANNEL": " C0OPS "})
    assert (configured.slack_admin_channel, configured.admin_notices) == ("C0OPS", True)


# --- secrets ------------------------------------------------------------------------------------------------


def example_placeholders() -> dict[str, str]:
    """The commented-out `# NAME=value` lines of config.example.env."""
    example = (Path(__file__).parents[2] / "config.example.env").read_text()
    pairs = (line.removeprefix("# ").split("=", 1) for line in example.splitlines() if line.startswith("# "))
    return {name: value for name, value in (pair for pair in pairs if len(pair) == 2) if name.isupper()}


STRONG = "kq3V9yZtX2pB7wRm4sLd8fHj6nGc1aEu0oTi"  # 36 characters, like secrets.token_urlsafe(27)
SECRETS = {
    "SLACK_BOT_TOKEN": {"SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef"},
    "SLACK_SIGNING_SECRET": {"SLACK_BOT_TOKEN": "xoxb-1-2-3"},
    "SLACK_APP_TOKEN": {"SLACK_BOT_TOKEN": "xoxb-1-2-3"},
    "TWILIO_AUTH_TOKEN": {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_FROM_NUMBER": "+15005550006"},
    "SMTP_PASSWORD": {},
    "NPS_API_KEYS": {},
    "NPS_SECRET_KEY": {},
    "NPS_METRICS_TOKEN": {},
}


@pytest.mark.parametrize("variable", sorted(SECRETS))
def test_a_secret_left_at_its_placeholder_is_refused(variable: str) -> None:
    placeholder = example_placeholders()[variable]
    with pytest.raises(SettingsError) as error:
        parse_settings({**SECRETS[variable], variable: placeholder})
    assert str(error.value) == (
        f"{variable} is still the placeholder of config.example.env; set a real value or remove it"
    )


def test_every_secret_of_the_example_file_is_checked() -> None:
    secret = {
        name
        for name in example_placeholders()
        if name.endswith(("TOKEN", "SECRET", "PASSWORD", "KEY", "KEYS"))
    }
    assert secret == set(SECRETS)


@pytest.mark.parametrize(
    "value",
    ["short-but-random-9f8e7d", "a" * 64, "abababababababababababababababababab"],
    ids=["under 32 characters", "one character", "two characters"],
)
@pytest.mark.parametrize("variable", ["NPS_SECRET_KEY", "NPS_API_KEYS"])
def test_secret_keys_and_api_keys_need_32_random_characters(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as error:
        parse_settings({variable: f"{STRONG},{value}" if variable == "NPS_API_KEYS" else value})
    assert str(error.value).startswith(f"{variable} is too weak: use at least 32 random characters")
    assert value not in str(error.value)


def test_strong_secret_keys_and_api_keys_are_accepted() -> None:
    import secrets

    key = secrets.token_urlsafe(32)
    settings = parse_settings({"NPS_SECRET_KEY": STRONG, "NPS_API_KEYS": f"{key}, {STRONG}"})
    assert settings.secret_key == STRONG
    assert settings.api_keys == (key, STRONG)


def test_log_format_and_library_level_are_read() -> None:
    settings = parse_settings({"LOG_FORMAT": "json", "LOG_LIBRARIES": "info"})
    assert (settings.log_format, settings.log_libraries) == ("json", "INFO")
    assert (parse_settings({}).log_format, parse_settings({}).log_libraries) == ("text", None)


def test_quiet_hours_can_be_overridden_from_a_file(tmp_path: Path) -> None:
    override = tmp_path / "quiet.yaml"
    override.write_text(
        'rules:\n  US-FL: {start: "09:00", end: "19:00", source: our counsel}\n  FR: {disabled: true}\n'
    )
    rules = parse_settings({"NPS_QUIET_HOURS_FILE": str(override)}).quiet_hours
    assert (rules["US-FL"].start.hour, rules["US-FL"].end.hour) == (9, 19)
    assert "FR" not in rules and rules["US"].end.hour == 21
    assert "US-FL" in parse_settings({}).quiet_hours


@pytest.mark.parametrize(
    "text", ["rules: {US: {start: '21:00', end: '08:00'}}", "rules: {US: {end: '20:00'}}"]
)
def test_a_bad_quiet_hours_file_is_an_error_naming_the_variable(tmp_path: Path, text: str) -> None:
    override = tmp_path / "quiet.yaml"
    override.write_text(text)
    with pytest.raises(SettingsError, match="NPS_QUIET_HOURS_FILE"):
        parse_settings({"NPS_QUIET_HOURS_FILE": str(override)})
    with pytest.raises(SettingsError, match="NPS_QUIET_HOURS_FILE"):
        parse_settings({"NPS_QUIET_HOURS_FILE": str(tmp_path / "missing.yaml")})


def test_an_industry_benchmark_is_a_label_and_a_score() -> None:
    from campaigns.scores.nps import Benchmark

    assert parse_settings({"NPS_BENCHMARK": "B2B software=+41"}).benchmark == Benchmark("B2B software", 41)
    assert parse_settings({}).benchmark is None
    for bad in ("41", "SaaS=141", "SaaS=high", "=30"):
        with pytest.raises(SettingsError, match="NPS_BENCHMARK"):
            parse_settings({"NPS_BENCHMARK": bad})


def test_branding_is_read_and_an_accent_colour_without_aa_contrast_is_refused() -> None:
    settings = parse_settings(
        {
            "BRAND_COMPANY_NAME": "Acme",
            "BRAND_LOGO_URL": "https://acme.example/logo.png",
            "BRAND_ACCENT_COLOUR": "#0B57D0",
            "EMAIL_SENDER_NAME": "Acme Customer Care",
        }
    )
    assert settings.branding.company == "Acme"
    assert settings.branding.logo_url == "https://acme.example/logo.png"
    assert settings.branding.accent == "#0b57d0"
    assert settings.branding.sender_name == "Acme Customer Care"
    assert parse_settings({}).branding.accent == "#1a73e8"
    with pytest.raises(SettingsError, match=r"BRAND_ACCENT_COLOUR.*#f9ab00.*1\.9.*4\.5"):
        parse_settings({"BRAND_ACCENT_COLOUR": "#f9ab00"})
    with pytest.raises(SettingsError, match="BRAND_ACCENT_COLOUR"):
        parse_settings({"BRAND_ACCENT_COLOUR": "blue"})
    with pytest.raises(SettingsError, match="BRAND_LOGO_URL"):
        parse_settings({"BRAND_LOGO_URL": "javascript:alert(1)"})


@pytest.mark.parametrize(
    "url",
    [
        # The logo's origin goes into the survey page's Content-Security-Policy: none may add a directive.
        "https://cdn.example;script-src 'unsafe-inline'/logo.png",
        "https://cdn.example,https://evil.example/logo.png",
        "https://cdn.example/logo.png\r\nSet-Cookie: a=b",
        "https://cdn .example/logo.png",
    ],
)
def test_a_logo_url_that_would_change_the_pages_security_policy_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="BRAND_LOGO_URL"):
        parse_settings({"BRAND_LOGO_URL": url})
    assert parse_settings({"BRAND_LOGO_URL": "https://res.example/w_80,h_40/logo.png"}).branding.logo_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("1", 1),
        (" 25 ", 25),
        ("1000", 1000),
        ("-1", None),
        ("1001", None),
        ("ten", None),
        ("2.5", None),
        ("", 10),
        ("1_0", None),
        ("١٠", None),
    ],
)
def test_slack_alerts_per_minute_takes_whole_numbers_from_0_to_1000(raw: str, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(SettingsError, match="SLACK_ALERTS_PER_MINUTE"):
            parse_settings({"SLACK_ALERTS_PER_MINUTE": raw})
    else:
        assert parse_settings({"SLACK_ALERTS_PER_MINUTE": raw}).slack_alerts_per_minute == expected
