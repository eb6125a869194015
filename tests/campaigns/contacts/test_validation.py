from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.contacts.validation import (
    STANDARD_FIELDS,
    ContactInput,
    ContactValidationError,
    FieldError,
    lacks_channel,
    validate_contact,
)

EMAIL = "ada@example.com"


def errors_of(raw: dict[str, object], **kwargs: str) -> list[FieldError]:
    with pytest.raises(ContactValidationError) as caught:
        validate_contact(raw, **kwargs)  # type: ignore[arg-type]
    return caught.value.errors


def only_error(raw: dict[str, object], **kwargs: str) -> FieldError:
    errors = errors_of(raw, **kwargs)
    assert len(errors) == 1, errors
    return errors[0]


# --- a valid record -----------------------------------------------------------------------------------------


def test_a_complete_record_is_normalised() -> None:
    contact = validate_contact(
        {
            "external_id": " cust-1 ",
            "name": "  Ada Lovelace ",
            "phone": "+49 30 1234567",
            "email": "Ada@Example.COM",
            "locale": "pt_BR",
            "timezone": "Europe/Berlin",
            "plan": " pro ",
        }
    )
    assert contact == ContactInput(
        external_id="cust-1",
        name="Ada Lovelace",
        phone="+49301234567",
        email="Ada@example.com",
        locale="pt-BR",
        timezone="Europe/Berlin",
        properties={"plan": "pro"},
    )


def test_standard_fields_are_the_documented_columns() -> None:
    assert STANDARD_FIELDS == (
        "external_id",
        "name",
        "phone",
        "email",
        "locale",
        "timezone",
        "customer_since",
        "last_surveyed_at",
    )


# --- history: customer_since and last_surveyed_at -------------------------------------------------------------


def test_history_dates_are_read_as_utc_dates_or_datetimes() -> None:
    contact = validate_contact(
        {
            "external_id": "c1",
            "phone": "+49301234567",
            "customer_since": "2019-03-01",
            "last_surveyed_at": "2026-10-02T09:30:00+02:00",
        }
    )
    assert contact.customer_since == datetime(2019, 3, 1, tzinfo=UTC)
    assert contact.last_surveyed_at == datetime(2026, 10, 2, 7, 30, tzinfo=UTC)
    assert "customer_since" not in contact.properties


def test_a_history_datetime_without_offset_is_utc() -> None:
    contact = validate_contact({"external_id": "c1", "customer_since": "2020-01-02 08:00"})
    assert contact.customer_since == datetime(2020, 1, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["01/03/2019", "yesterday", "2019-13-01", "2019-02-30"])
def test_a_history_date_that_is_not_iso_is_refused_with_an_example(value: str) -> None:
    error = only_error({"external_id": "c1", "customer_since": value})
    assert error.field == "customer_since"
    assert "is not a date" in error.message and "2019-03-01" in error.message


def test_a_history_date_must_be_text() -> None:
    error = only_error({"external_id": "c1", "last_surveyed_at": 20190301})
    assert error.field == "last_surveyed_at" and "must be text" in error.message


def test_optional_fields_that_are_empty_or_missing_become_none() -> None:
    contact = validate_contact(
        {"external_id": "c1", "email": EMAIL, "name": "  ", "locale": "", "phone": None}
    )
    assert contact.name is None
    assert contact.locale is None
    assert contact.phone is None
    assert contact.timezone is None
    assert contact.properties == {}


# --- external_id --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_external_id_is_required(value: str | None) -> None:
    raw: dict[str, object] = {"email": EMAIL}
    if value is not None:
        raw["external_id"] = value
    assert only_error(raw) == FieldError("external_id", "is required")


def test_external_id_may_be_255_characters_but_not_more() -> None:
    assert validate_contact({"external_id": "x" * 255, "email": EMAIL}).external_id == "x" * 255
    error = only_error({"external_id": "x" * 256, "email": EMAIL})
    assert error.field == "external_id"
    assert "at most 255" in error.message


@pytest.mark.parametrize("value", ["a\nb", "a\tb", "a\x00b", "a\x7fb"])
def test_external_id_rejects_control_characters(value: str) -> None:
    error = only_error({"external_id": value, "email": EMAIL})
    assert error.field == "external_id"
    assert "control characters" in error.message
    assert "\n" not in error.message  # shown escaped, so a report stays one line per problem


# --- name ---------------------------------------------------------------------------------------------------


def test_name_longer_than_255_characters_is_rejected() -> None:
    assert only_error({"external_id": "c1", "email": EMAIL, "name": "n" * 256}).field == "name"


# --- phone --------------------------------------------------------------------------------------------------


def test_international_phone_number_is_stored_as_e164() -> None:
    assert validate_contact({"external_id": "c1", "phone": "+1 (201) 555-0123"}).phone == "+12015550123"


def test_national_german_number_is_read_with_default_region_de() -> None:
    contact = validate_contact({"external_id": "c1", "phone": "030 1234567"}, default_region="DE")
    assert contact.phone == "+49301234567"


def test_national_us_number_is_read_with_default_region_us() -> None:
    contact = validate_contact({"external_id": "c1", "phone": "(201) 555-0123"}, default_region="US")
    assert contact.phone == "+12015550123"


def test_default_region_is_case_insensitive() -> None:
    contact = validate_contact({"external_id": "c1", "phone": "030 1234567"}, default_region="de")
    assert contact.phone == "+49301234567"


def test_default_region_does_not_override_an_international_number() -> None:
    contact = validate_contact({"external_id": "c1", "phone": "+44 20 7946 0018"}, default_region="DE")
    assert contact.phone == "+442079460018"


def test_national_number_without_default_region_explains_what_to_do() -> None:
    error = only_error({"external_id": "c1", "phone": "030 1234567"})
    assert error.field == "phone"
    assert "country code" in error.message
    assert "--default-region" in error.message


def test_unknown_default_region_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="region"):
        validate_contact({"external_id": "c1", "phone": "030 1234567"}, default_region="XX")


def test_full_width_digits_are_accepted() -> None:
    contact = validate_contact({"external_id": "c1", "phone": "+４９ ３０ １２３４５６７"})
    assert contact.phone == "+49301234567"


def test_obviously_bad_number_is_rejected() -> None:
    assert only_error({"external_id": "c1", "phone": "+1 555"}) == FieldError(
        "phone", "'+1 555' is not a valid phone number"
    )


@pytest.mark.parametrize("value", ["call me", "+", "+49 30 1234567 1234567 1234567"])
def test_phone_that_is_not_a_number_is_rejected(value: str) -> None:
    assert only_error({"external_id": "c1", "phone": value}).field == "phone"


def test_phone_with_extension_is_rejected_rather_than_truncated() -> None:
    error = only_error({"external_id": "c1", "phone": "+1 201 555 0123 ext. 42"})
    assert error.field == "phone"
    assert "extension" in error.message


def test_phone_given_as_a_json_number_gets_a_clear_error() -> None:
    error = only_error({"external_id": "c1", "email": EMAIL, "phone": 4915112345678})
    assert error == FieldError("phone", "must be text (a string), not a number")


# --- email --------------------------------------------------------------------------------------------------


def test_email_is_stored_normalised() -> None:
    assert validate_contact({"external_id": "c1", "email": " Ada@EXAMPLE.com "}).email == "Ada@example.com"


def test_internationalised_email_is_accepted() -> None:
    assert validate_contact({"external_id": "c1", "email": "jörg@bücher.de"}).email == "jörg@bücher.de"


@pytest.mark.parametrize("value", ["ada", "ada@", "@example.com", "ada@example", "a b@example.com"])
def test_invalid_email_is_rejected_with_the_value_in_the_message(value: str) -> None:
    error = only_error({"external_id": "c1", "email": value})
    assert error.field == "email"
    assert error.message.startswith(f"'{value}' is not a valid email address")


# --- contact channel ----------------------------------------------------------------------------------------


def test_a_record_without_phone_or_email_is_valid_but_lacks_a_channel() -> None:
    # Updates may omit both and keep the stored values; only a new contact must have one (see the import).
    contact = validate_contact({"external_id": "c1", "name": "Ada"})
    assert lacks_channel(contact)
    assert not lacks_channel(validate_contact({"external_id": "c1", "email": "ada@example.com"}))


def test_a_phone_alone_is_enough() -> None:
    assert validate_contact({"external_id": "c1", "phone": "+49 30 1234567"}).email is None


def test_a_rejected_phone_is_reported_once() -> None:
    assert [error.field for error in errors_of({"external_id": "c1", "phone": "+1 555"})] == ["phone"]


# --- locale -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("pt_BR", "pt-BR"),
        ("pt-br", "pt-BR"),
        ("zh_hans", "zh-Hans"),
        ("ZH-HANT-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("fil", "fil"),
    ],
)
def test_locale_is_normalised_to_bcp47_case(value: str, expected: str) -> None:
    assert validate_contact({"external_id": "c1", "email": EMAIL, "locale": value}).locale == expected


@pytest.mark.parametrize("value", ["english", "e", "en-", "en-USA", "pt_BR.UTF-8", "ëë"])
def test_malformed_locale_is_rejected(value: str) -> None:
    error = only_error({"external_id": "c1", "email": EMAIL, "locale": value})
    assert error.field == "locale"
    assert error.message.startswith(f"'{value}' is not a locale")


# --- time zone ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Europe/Berlin", "America/Sao_Paulo", "UTC"])
def test_iana_time_zone_is_accepted(value: str) -> None:
    assert validate_contact({"external_id": "c1", "email": EMAIL, "timezone": value}).timezone == value


def test_time_zone_in_another_case_is_stored_canonically() -> None:
    contact = validate_contact({"external_id": "c1", "email": EMAIL, "timezone": "europe/berlin"})
    assert contact.timezone == "Europe/Berlin"


def test_unknown_time_zone_is_rejected() -> None:
    assert only_error({"external_id": "c1", "email": EMAIL, "timezone": "Mars/Olympus"}) == FieldError(
        "timezone", "'Mars/Olympus' is not an IANA time zone (e.g. Europe/Berlin)"
    )


# --- properties ---------------------------------------------------------------------------------------------


def test_non_standard_columns_become_properties() -> None:
    contact = validate_contact({"external_id": "c1", "email": EMAIL, "plan": "pro", " region ": " EU "})
    assert contact.properties == {"plan": "pro", "region": "EU"}


def test_nested_properties_from_json_are_converted_to_text() -> None:
    contact = validate_contact(
        {
            "external_id": "c1",
            "email": EMAIL,
            "properties": {"plan": "pro", "seats": 12, "score": 1.5, "trial": False},
        }
    )
    assert contact.properties == {"plan": "pro", "seats": "12", "score": "1.5", "trial": "false"}


def test_nested_and_column_properties_are_merged() -> None:
    contact = validate_contact(
        {"external_id": "c1", "email": EMAIL, "plan": "pro", "properties": {"role": "cto"}}
    )
    assert contact.properties == {"plan": "pro", "role": "cto"}


def test_empty_property_values_are_dropped() -> None:
    contact = validate_contact(
        {"external_id": "c1", "email": EMAIL, "plan": "  ", "properties": {"role": None, "team": ""}}
    )
    assert contact.properties == {}


def test_property_named_like_a_standard_field_is_rejected() -> None:
    error = only_error({"external_id": "c1", "email": EMAIL, "properties": {"phone": "+49 30 1234567"}})
    assert error.field == "properties"
    assert "'phone'" in error.message


def test_property_colliding_with_a_standard_field_in_another_case_is_rejected() -> None:
    assert only_error({"external_id": "c1", "email": EMAIL, "Email": "x@example.com"}).field == "properties"


def test_property_name_may_be_64_characters_but_not_more() -> None:
    contact = validate_contact({"external_id": "c1", "email": EMAIL, "k" * 64: "v"})
    assert contact.properties == {"k" * 64: "v"}
    assert only_error({"external_id": "c1", "email": EMAIL, "k" * 65: "v"}).field == "properties"


def test_at_most_50_properties_are_accepted_and_more_are_one_error() -> None:
    fifty = {f"p{i}": "v" for i in range(50)}
    assert len(validate_contact({"external_id": "c1", "email": EMAIL, "properties": fifty}).properties) == 50
    many = {f"p{i}": "v" for i in range(10_000)}
    error = only_error({"external_id": "c1", "email": EMAIL, "properties": many})
    assert (error.field, error.message) == ("properties", "has 10000 properties; at most 50")


def test_empty_property_values_do_not_count_against_the_limit() -> None:
    # A spreadsheet with many optional columns: only what a row fills in is stored.
    row = {f"col{i}": "" for i in range(200)} | {"plan": "pro"}
    assert validate_contact({"external_id": "c1", "email": EMAIL, **row}).properties == {"plan": "pro"}


def test_a_property_value_may_be_1000_characters_and_a_longer_one_is_named_not_echoed() -> None:
    assert validate_contact({"external_id": "c1", "email": EMAIL, "note": "x" * 1000}).properties["note"]
    error = only_error({"external_id": "c1", "email": EMAIL, "properties": {"note": "secret" * 2_000_000}})
    assert error.field == "properties"
    assert error.message == "the value of 'note' is too long (12000000 characters; at most 1000)"


def test_a_long_number_counts_as_its_digits() -> None:
    assert (
        only_error({"external_id": "c1", "email": EMAIL, "properties": {"n": 10**1200}}).field == "properties"
    )


def test_property_without_a_name_is_rejected() -> None:
    assert only_error({"external_id": "c1", "email": EMAIL, "properties": {" ": "v"}}).field == "properties"


def test_property_given_twice_with_different_values_is_rejected() -> None:
    error = only_error({"external_id": "c1", "email": EMAIL, "plan": "pro", "properties": {"plan": "free"}})
    assert "twice" in error.message


@pytest.mark.parametrize("value", [["a"], {"nested": "x"}])
def test_structured_property_values_are_rejected(value: object) -> None:
    assert (
        only_error({"external_id": "c1", "email": EMAIL, "properties": {"tags": value}}).field == "properties"
    )


def test_properties_that_are_not_an_object_are_rejected() -> None:
    error = only_error({"external_id": "c1", "email": EMAIL, "properties": "plan=pro"})
    assert error.field == "properties"


# --- error reporting ----------------------------------------------------------------------------------------


def test_all_field_errors_are_collected() -> None:
    errors = errors_of({"external_id": "c1", "phone": "+1 555", "timezone": "Mars/Olympus"})
    assert [error.field for error in errors] == ["phone", "timezone"]


def test_error_message_lists_every_field() -> None:
    with pytest.raises(ContactValidationError) as caught:
        validate_contact({"external_id": "c1", "phone": "+1 555", "timezone": "Mars/Olympus"})
    assert str(caught.value) == (
        "phone: '+1 555' is not a valid phone number; "
        "timezone: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Berlin)"
    )


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(ContactValidationError, ValueError)


@pytest.mark.parametrize("field", STANDARD_FIELDS)
@pytest.mark.parametrize("value", [42, 4.2, True, ["x"], {"x": 1}])
def test_non_text_standard_fields_get_a_clear_error(field: str, value: object) -> None:
    raw: dict[str, object] = {"external_id": "c1", "email": EMAIL, field: value}
    errors = errors_of(raw)
    assert any(error.field == field and error.message.startswith("must be text") for error in errors)


def test_long_values_are_shortened_in_messages() -> None:
    error = only_error({"external_id": "c1", "email": EMAIL, "timezone": "Z" * 10_000})
    assert len(error.message) < 200


def test_undecodable_text_is_rejected_not_crashed_on() -> None:
    # Lone surrogates are what surrogateescape-decoding leaves for bytes that are not UTF-8.
    errors = errors_of({"external_id": "caf\udce9", "email": "caf\udce9@example.com", "n\udce9": "v"})
    assert [error.field for error in errors] == ["external_id", "email", "properties"]


# --- never anything but a ContactValidationError ------------------------------------------------------------

scalars = st.one_of(st.text(), st.integers(), st.none(), st.booleans(), st.floats())
keys = st.one_of(st.sampled_from((*STANDARD_FIELDS, "properties")), st.text(max_size=70))
plausible_text = st.one_of(
    st.text(),
    st.sampled_from(
        ["+49 30 1234567", "030 1234567", "+1 555", "ada@example.com", "pt_BR", "UTC", "Europe/Berlin"]
    ),
    st.text(alphabet="+0123456789 ()-.extＯ０１２", max_size=30),
    st.emails(),
)
values = st.one_of(
    scalars,
    plausible_text,
    st.dictionaries(st.one_of(st.text(), st.integers()), scalars, max_size=4),
    st.lists(scalars, max_size=3),
)


@settings(max_examples=500)
@given(st.dictionaries(keys, values, max_size=10), st.sampled_from([None, "DE", "US", "gb"]))
def test_any_mapping_either_validates_or_raises_contact_validation_error(
    raw: dict[str, object], region: str | None
) -> None:
    try:
        contact = validate_contact(raw, default_region=region)
    except ContactValidationError as error:
        assert error.errors
        assert all(isinstance(item, FieldError) and item.message for item in error.errors)
    else:
        assert contact.external_id
        assert all(key and value for key, value in contact.properties.items())


@given(
    external_id=st.text(min_size=1, max_size=255).filter(lambda text: text.strip() and text.isprintable()),
    phone=st.sampled_from(["+49 30 1234567", "+1 201 555 0123", "+44 20 7946 0018"]),
    properties=st.dictionaries(
        st.text(min_size=1, max_size=20).filter(
            lambda key: (
                key == key.strip()
                and key
                and key.casefold() not in (*STANDARD_FIELDS, "properties")
                and "\x00" not in key
            )
        ),
        st.text().filter(lambda value: "\x00" not in value),  # NUL cannot be stored (PostgreSQL)
        max_size=5,
    ),
)
def test_valid_records_round_trip(external_id: str, phone: str, properties: dict[str, str]) -> None:
    contact = validate_contact({"external_id": external_id, "phone": phone, "properties": properties})
    assert contact.external_id == external_id.strip()
    assert contact.phone is not None and contact.phone.startswith("+")
    assert contact == validate_contact(
        {
            "external_id": contact.external_id,
            "phone": contact.phone,
            "properties": contact.properties,
        }
    )
