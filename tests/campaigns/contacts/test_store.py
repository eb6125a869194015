from sqlalchemy import func, select

from campaigns.contacts.store import get_contact_by_external_id, upsert_contacts
from campaigns.contacts.validation import ContactInput
from storage.db import Database
from storage.tables import Contact


def _count(db: Database) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Contact)) or 0


def test_new_contacts_are_created(db: Database) -> None:
    with db.transaction() as session:
        result = upsert_contacts(
            [
                ContactInput(
                    external_id="c1", name="Ana", phone="+4915112345678", properties={"plan": "pro"}
                ),
                ContactInput(external_id="c2", email="bo@example.com", timezone="Europe/Paris"),
            ],
            session=session,
        )
    assert (result.created, result.updated) == (2, 0)
    with db.transaction() as session:
        ana = get_contact_by_external_id("c1", session=session)
        assert ana is not None
        assert (ana.name, ana.phone, ana.properties) == ("Ana", "+4915112345678", {"plan": "pro"})
        assert ana.created_at.tzinfo is not None


def test_an_existing_external_id_is_updated_not_duplicated(db: Database) -> None:
    with db.transaction() as session:
        upsert_contacts(
            [ContactInput(external_id="c1", name="Ana", properties={"plan": "pro"})], session=session
        )
    with db.transaction() as session:
        result = upsert_contacts(
            [ContactInput(external_id="c1", name="Ana Lima", properties={"region": "EU"})], session=session
        )
    assert (result.created, result.updated) == (0, 1)
    assert _count(db) == 1
    with db.transaction() as session:
        ana = get_contact_by_external_id("c1", session=session)
        assert ana is not None
        assert ana.name == "Ana Lima"
        assert ana.properties == {"plan": "pro", "region": "EU"}


def test_empty_fields_keep_what_is_stored(db: Database) -> None:
    with db.transaction() as session:
        upsert_contacts(
            [ContactInput(external_id="c1", phone="+4915112345678", locale="de")], session=session
        )
    with db.transaction() as session:
        upsert_contacts([ContactInput(external_id="c1", email="ana@example.com")], session=session)
    with db.transaction() as session:
        ana = get_contact_by_external_id("c1", session=session)
        assert ana is not None
        assert (ana.phone, ana.email, ana.locale) == ("+4915112345678", "ana@example.com", "de")


def test_a_failed_batch_writes_nothing(db: Database) -> None:
    try:
        with db.transaction() as session:
            upsert_contacts([ContactInput(external_id="c1"), ContactInput(external_id="c2")], session=session)
            raise RuntimeError("the process dies mid-batch")
    except RuntimeError:
        pass
    assert _count(db) == 0
