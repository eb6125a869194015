"""Set-based planning of a recurring campaign: one `INSERT ... SELECT` per id range of contacts.

A range is 5,000 contacts on SQLite, whose write lock is the whole database's, and 20,000 on PostgreSQL, whose
range transaction locks only the rows it writes (see `RANGE` and `POSTGRESQL_RANGE`).

The rules are those of `campaigns.planning.decide.decide`, written as SQL: the audience filter, the due time
(interval after this campaign's last invitation, or the first survey's spread and `first_after_days` from the
customer's start), no survey already queued, not opted out, a usable channel, and the fatigue rule from our
own surveys and `contacts.last_surveyed_at`. Every due contact that is *not* eligible (a minority: opted out,
no channel, fatigued) is then handed to the contact-by-contact planner, which records why it was skipped with
the same function `nps contacts why` uses. A test plans one mixed data set both ways and compares the rows.

What SQL cannot say the same way as Python goes to the contact-by-contact planner instead:
- whole campaigns with an `event` (anchors), a `sample_rate` below 1 or a `daily_target` (see `supports`);
- an audience whose keys or values are not plain ASCII, or that quotes JSON path characters;
- per id range, contacts whose property at an audience key is not plain ASCII text, or who carry the key only
  in another case ("Plan" for `plan`): Python compares those with `casefold()`, SQL's `lower()` only folds
  ASCII (see `leftovers`).

Due times only need comparing with `now` (a planned contact is due at or before it), so every date
computation is done once in Python and bound as a parameter; the send window gives the same due time to every
contact of one time zone, computed per zone and chosen with a `CASE`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from campaigns.definitions.model import CampaignDefinition
from campaigns.planning.decide import fatigue_for
from campaigns.planning.eligibility import ContactFacts
from campaigns.planning.facts import latest
from campaigns.planning.sampling import phase_days
from campaigns.planning.windows import next_send_time, zone_for
from storage.enums import Channel, ConsentStatus, InvitationState
from storage.tables import IS_PENDING, PENDING_INVITATION_STATES, Campaign, Consent, Contact, Invitation
from storage.types import UTCDateTime

# Contacts per INSERT ... SELECT on SQLite: a transaction of a few tens of milliseconds, so the planner never
# holds SQLite's write lock, the whole database's, long enough to stall the dispatcher or the webhooks.
RANGE = 5000
# On PostgreSQL a range's transaction locks only what it writes (its new invitations and skips, unseen by others
# until it commits) and shares the contacts and the campaign it refers to (blocking their deletion only): the
# dispatcher's claims and the webhooks' updates go on meanwhile. What waits is an event queueing a survey for one
# of the range's contacts, until the range commits (about half a second at 20,000). Four times the contacts
# of a SQLite range, because each range costs statements, plans and a commit whatever its size: at 1,000,000
# contacts a pass took 2.1 times the benchmark's hand-written INSERT ... SELECT instead of 2.5 times.
POSTGRESQL_RANGE = 20_000

_ASCII_ONLY = frozenset(chr(code) for code in range(0x20, 0x7F))
_UNQUOTABLE = frozenset('"\\$.[]*')


def supports(definition: CampaignDefinition) -> str | None:
    """None when the whole campaign can be planned in SQL; otherwise why not, for the log."""
    if definition.event:
        return "it starts with an event"
    if definition.sample_rate < 1:
        return "it samples"
    if definition.daily_target is not None:
        return "it has a daily target"
    for key, values in definition.audience.properties.items():
        if not _plain(key) or set(key) & _UNQUOTABLE or not all(_plain(v.casefold()) for v in values):
            return f"its audience filter on {key!r} is not plain ASCII"
    return None


def id_ranges(session: Session, *, size: int | None = None) -> list[tuple[int, int]]:
    """Inclusive [low, high] id ranges of at most `size` contacts each (by default the engine's), read from the
    primary key alone."""
    size = size or (POSTGRESQL_RANGE if session.get_bind().dialect.name == "postgresql" else RANGE)
    ranges: list[tuple[int, int]] = []
    after = 0
    while True:
        low = session.scalar(select(func.min(Contact.id)).where(Contact.id > after))
        if low is None:
            return ranges
        high = session.scalar(
            select(Contact.id).where(Contact.id >= low).order_by(Contact.id).offset(size - 1).limit(1)
        )
        if high is None:
            high = session.scalar(select(func.max(Contact.id)))
            assert high is not None
        ranges.append((low, high))
        after = high


@dataclass(frozen=True)
class Leftover:
    """A due contact of the range `insert_due` will not plan, with the facts `eligibility.check` needs."""

    contact_id: int
    facts: ContactFacts


def leftovers(
    session: Session,
    campaign: Campaign,
    definition: CampaignDefinition,
    *,
    low: int,
    high: int,
    now: datetime,
    global_fatigue_days: int,
) -> list[Leftover] | None:
    """The contacts of the range `insert_due` will not plan but whose skip must be recorded.

    Those due but not eligible (opted out, no channel, fatigued), each with its eligibility facts read by the
    same query (so the caller decides why with `eligibility.check`, without reading the range again). None when
    some contact of the range has audience properties SQL would compare differently from Python: then the whole
    range goes contact by contact. One query for both, run before `insert_due` (which plans only the eligible,
    so the answer is the same after it).
    """
    _prepare(session)
    dialect = session.get_bind().dialect.name
    history = _history(campaign.id)
    keys = definition.audience.properties
    odd = or_(*(_odd_property(dialect, key) for key in keys)) if keys else false()
    due_not_eligible = and_(
        _due(campaign, definition, history, dialect, now=now, low=low, high=high),
        not_(
            _eligible(
                definition, dialect, now=now, global_fatigue_days=global_fatigue_days, low=low, high=high
            )
        ),
    )
    rows = session.execute(
        select(
            Contact.id,
            odd,
            Contact.phone,
            Contact.email,
            Contact.opted_out_at,
            Contact.last_surveyed_at,
            _last_surveyed_here(),
            _opted_out(Channel.SMS),
            _opted_out(Channel.EMAIL),
        )
        .select_from(Contact)
        .where(_between(dialect, Contact.id, low, high), or_(odd, due_not_eligible))
        .order_by(Contact.id)
    ).all()
    if any(row[1] for row in rows):
        return None
    found = []
    for contact_id, _, phone, email, opted_out_at, elsewhere, here, sms_left, email_left in rows:
        left: set[tuple[Channel, str]] = set()
        if sms_left and phone:
            left.add((Channel.SMS, phone))
        if email_left and email:
            left.add((Channel.EMAIL, email))
        facts = ContactFacts(
            phone=phone,
            email=email,
            opted_out_at=opted_out_at,
            opted_out_addresses=frozenset(left),
            last_surveyed_at=latest(here, elsewhere),
        )
        found.append(Leftover(contact_id, facts))
    return found


def _last_surveyed_here() -> ColumnElement[datetime]:
    """`facts.last_surveyed` for the row's contact: its last survey sent (or held for review) by any campaign."""
    maybe_sent = case((Invitation.state == InvitationState.REVIEW, Invitation.updated_at), else_=None)
    return (
        select(func.max(func.coalesce(Invitation.sent_at, maybe_sent)))
        .where(
            Invitation.contact_id == Contact.id,
            or_(Invitation.sent_at.is_not(None), Invitation.state == InvitationState.REVIEW),
        )
        .correlate(Contact)
        .scalar_subquery()
    )


def _opted_out(channel: Channel) -> ColumnElement[bool]:
    """The row's address on `channel` has opted out (a consent row says so)."""
    address = Contact.phone if channel is Channel.SMS else Contact.email
    return exists().where(
        Consent.channel == channel, Consent.address == address, Consent.status == ConsentStatus.OPTED_OUT
    )


def insert_due(
    session: Session,
    campaign: Campaign,
    definition: CampaignDefinition,
    *,
    low: int,
    high: int,
    now: datetime,
    global_fatigue_days: int,
    default_timezone: str,
) -> tuple[int, list[int]]:
    """Plan every due, eligible contact of the range with one statement.

    Returns how many were planned and the candidates another session queued a survey for meanwhile.
    """
    _prepare(session)
    dialect = session.get_bind().dialect.name
    history = _history(campaign.id)
    due_at = _due_at_by_zone(session, definition, low, high, now=now, default_timezone=default_timezone)
    cycle = history.cycles + 1
    dedupe = literal(f"{campaign.id}:") + cast(Contact.id, String) + literal(":r") + cast(cycle, String)
    query = (
        select(
            literal(campaign.id).label("campaign_id"),
            Contact.id.label("contact_id"),
            literal(InvitationState.PLANNED.value).label("state"),
            due_at.label("due_at"),
            _token(dialect).label("token"),
            dedupe.label("dedupe_key"),
            literal(0).label("attempts"),
            literal(now, UTCDateTime()).label("created_at"),
            literal(now, UTCDateTime()).label("updated_at"),
        )
        .select_from(Contact)
        .where(
            _due(campaign, definition, history, dialect, now=now, low=low, high=high),
            _eligible(
                definition, dialect, now=now, global_fatigue_days=global_fatigue_days, low=low, high=high
            ),
        )
    )
    columns = [
        "campaign_id",
        "contact_id",
        "state",
        "due_at",
        "token",
        "dedupe_key",
        "attempts",
        "created_at",
        "updated_at",
    ]
    if dialect != "postgresql":
        # One SQLite statement holds the write lock from its reads to its writes: no other session can queue a
        # survey for a candidate in between, so every candidate goes in.
        statement = (
            sqlite.insert(Invitation)
            .from_select(columns, query)
            .on_conflict_do_nothing(index_elements=["contact_id"], index_where=IS_PENDING)
        )
        return session.execute(statement).rowcount, []  # type: ignore[attr-defined]
    # On PostgreSQL another session may queue one meanwhile (an event): ON CONFLICT leaves that candidate out,
    # and the CTE names it, so that it is recorded as skipped like the contact-by-contact planner does.
    candidates = query.cte("candidates")
    inserted = (
        postgresql.insert(Invitation)
        .from_select(columns, select(*(candidates.c[name] for name in columns)))
        .on_conflict_do_nothing(index_elements=["contact_id"], index_where=IS_PENDING)
        .returning(Invitation.contact_id)
        .cte("inserted")
    )
    rows = session.execute(
        select(
            candidates.c.contact_id,
            candidates.c.contact_id.in_(select(inserted.c.contact_id)),
        )
    ).all()
    return sum(1 for _, went_in in rows if went_in), [
        contact_id for contact_id, went_in in rows if not went_in
    ]


# --- the rules in SQL ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _History:
    """One contact's invitations of this campaign so far (0 without one) and the last one's due time (NULL)."""

    cycles: ColumnElement[int]
    last_due: ColumnElement[datetime]


def _history(campaign_id: int) -> _History:
    """Looked up per contact in the `ix_invitations_campaign_id_contact_id_due_at` index.

    Not a join to the range's history grouped by contact: PostgreSQL, expecting few contacts in the range,
    recomputed that aggregate for every contact (a nested loop over the whole range's history, quadratic in
    the range size).
    """
    mine = (Invitation.campaign_id == campaign_id, Invitation.contact_id == Contact.id)
    return _History(
        cycles=select(func.count()).where(*mine).correlate(Contact).scalar_subquery(),
        last_due=select(func.max(Invitation.due_at)).where(*mine).correlate(Contact).scalar_subquery(),
    )


def _due(
    campaign: Campaign,
    definition: CampaignDefinition,
    history: _History,
    dialect: str,
    *,
    now: datetime,
    low: int,
    high: int,
) -> ColumnElement[bool]:
    """In the range and the audience, due at or before `now`, and nothing queued for the contact anywhere."""
    interval = definition.interval_days
    assert interval is not None
    again = history.last_due <= _at(now - timedelta(days=interval))
    start = func.coalesce(Contact.customer_since, Contact.created_at)
    first = and_(
        start <= _at(now - timedelta(days=definition.first_after_days)),
        _spread_reached(campaign, interval, dialect, now=now),
    )
    # Not bounded by the range (unlike the fatigue lookup): PostgreSQL then scanned the range's slice of the
    # pending index for every contact instead of probing it by contact.
    pending = _exists(
        dialect, Invitation.contact_id == Contact.id, Invitation.state.in_(PENDING_INVITATION_STATES)
    )
    return and_(
        _between(dialect, Contact.id, low, high),
        _audience(definition, dialect),
        # `again` is NULL exactly when there is no last due time: then the first survey's rule decides. One
        # lookup of the last due time per contact, not two.
        func.coalesce(again, first),
        not_(pending),
    )


def _spread_reached(campaign: Campaign, interval: int, dialect: str, *, now: datetime) -> ColumnElement[bool]:
    """campaign start + phase_days(contact) <= now, i.e. the contact's phase is at most the days elapsed."""
    elapsed = (now - campaign.created_at) // timedelta(days=1)
    if elapsed < 0:
        return false()
    if elapsed >= interval - 1:
        return true()  # every phase (0 .. interval - 1) is reached
    return _phase(dialect, interval, campaign.id) <= elapsed


def _phase(dialect: str, interval: int, campaign_id: int) -> ColumnElement[int]:
    """`sampling.phase_days(interval, campaign_id, contact_id)` computed by the database."""
    if dialect == "sqlite":
        return func.nps_phase_days(interval, campaign_id, Contact.id)
    # The same SHA-256 of the same length-prefixed text; its first 8 bytes as an unsigned big-endian integer.
    text = (
        literal(f"5:phase{len(str(campaign_id))}:{campaign_id}")
        + cast(func.length(cast(Contact.id, String)), String)
        + literal(":")
        + cast(Contact.id, String)
    )
    head = func.substring(func.sha256(func.convert_to(text, "UTF8")), 1, 8)
    signed = cast(cast(literal("x") + func.encode(head, "hex"), postgresql.BIT(64)), postgresql.BIGINT)
    unsigned = cast(signed, postgresql.NUMERIC) + case(
        (signed < 0, literal(2**64, postgresql.NUMERIC)), else_=0
    )
    return func.div(unsigned * interval, literal(2**64, postgresql.NUMERIC))


def _in_range(dialect: str, low: int, high: int) -> ColumnElement[bool]:
    """The invitations of the range's contacts: said again inside each correlated subquery, so that a database
    that hashes the subquery once per statement (PostgreSQL) reads the range's invitations, not the outbox's."""
    return _between(dialect, Invitation.contact_id, low, high)


def _between(dialect: str, column: InstrumentedAttribute[int], low: int, high: int) -> ColumnElement[bool]:
    """`column BETWEEN low AND high`, on PostgreSQL with the bounds written into the statement's text.

    psycopg prepares a statement it has run five times, and PostgreSQL may then run it with one generic plan for
    every range, blind to the bounds (at 1,000,000 contacts the leftovers' read took 1-7 s a range instead of
    0.05 s); a server set to `plan_cache_mode = force_generic_plan` does so at once. With the bounds in the text,
    each range's statements are new to the driver and planned knowing the range whatever the plan cache does.
    Not `SET LOCAL plan_cache_mode = force_custom_plan`: that also re-plans the foreign-key checks of every row
    the range writes (their saved queries), three times their cost, a third of the insert's time at 1,000,000.
    """
    if dialect != "postgresql":
        return column.between(low, high)
    return column.between(
        bindparam(None, low, Integer, literal_execute=True),
        bindparam(None, high, Integer, literal_execute=True),
    )


def _eligible(
    definition: CampaignDefinition,
    dialect: str,
    *,
    now: datetime,
    global_fatigue_days: int,
    low: int,
    high: int,
) -> ColumnElement[bool]:
    """`eligibility.check` at `now`: not opted out, a usable channel, and fatigue over."""
    cutoff = _at(now - timedelta(days=fatigue_for(definition, global_fatigue_days)))
    surveyed_since = _exists(
        dialect,
        Invitation.contact_id == Contact.id,
        _in_range(dialect, low, high),
        or_(
            Invitation.sent_at > cutoff,
            and_(
                Invitation.sent_at.is_(None),
                Invitation.state == InvitationState.REVIEW,
                Invitation.updated_at > cutoff,
            ),
        ),
    )
    return and_(
        Contact.opted_out_at.is_(None),
        or_(*(_usable(channel, dialect) for channel in definition.channels)),
        not_(surveyed_since),
        or_(Contact.last_surveyed_at.is_(None), Contact.last_surveyed_at <= cutoff),
    )


def _usable(channel: Channel, dialect: str) -> ColumnElement[bool]:
    address = Contact.phone if channel is Channel.SMS else Contact.email
    left = _exists(
        dialect,
        Consent.channel == channel,
        Consent.address == address,
        Consent.status == ConsentStatus.OPTED_OUT,
    )
    return and_(address.is_not(None), address != "", not_(left))


def _exists(dialect: str, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """EXISTS of `conditions`, probed per contact.

    PostgreSQL turns a NOT EXISTS into an anti-join, and with a range's many conditions it expects one contact
    and picks a nested loop that filters the whole index (or table) of the other side for every contact: a
    cost growing with the outbox and the consents, per range. An OFFSET keeps the subquery a subplan, run per
    contact with the contact's id or address as the index condition.
    """
    if dialect == "postgresql":
        return exists(select(literal(1)).where(*conditions).correlate(Contact).offset(0))
    return exists().where(*conditions)


def _audience(definition: CampaignDefinition, dialect: str) -> ColumnElement[bool]:
    audience = definition.audience
    conditions: list[ColumnElement[bool]] = [Contact.test.is_(False)]  # `nps campaigns test` addresses
    if audience.created_after is not None:
        conditions.append(Contact.created_at >= _at(audience.created_after))
    if audience.created_before is not None:
        conditions.append(Contact.created_at < _at(audience.created_before))
    for key, values in audience.properties.items():
        wanted = sorted({value.strip().casefold() for value in values})
        conditions.append(func.lower(func.trim(_property(dialect, key))).in_(wanted))
    return and_(true(), *conditions)


def _property(dialect: str, key: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        return Contact.properties.op("->>")(literal(key))
    return cast(func.json_extract(Contact.properties, f'$."{key}"'), String)


def _odd_property(dialect: str, key: str) -> ColumnElement[bool]:
    """The contact's value at `key` is not plain ASCII text, or the key is present only in another case."""
    folded = key.casefold()
    if dialect == "postgresql":
        keys = func.jsonb_object_keys(Contact.properties).table_valued("value").render_derived(name="k")
        other_case = exists(
            select(1)
            .select_from(keys)
            .where(
                or_(func.lower(keys.c.value) == folded, keys.c.value.op("~", is_comparison=True)("[^ -~]")),
                keys.c.value != key,
            )
        )
        value = Contact.properties.op("->")(literal(key))
        present = Contact.properties.op("?", is_comparison=True)(literal(key))
        return or_(
            and_(present, func.jsonb_typeof(value) != "string"),
            Contact.properties.op("->>")(literal(key)).op("~", is_comparison=True)(literal("[^ -~]")),
            and_(not_(present), other_case),  # Python looks the key up without case only when it is absent
        )
    path = f'$."{key}"'
    each = func.json_each(Contact.properties).table_valued("key", "value").alias("j")
    other = exists(
        select(1)
        .select_from(each)
        .where(
            or_(func.lower(each.c.key) == folded, each.c.key.op("GLOB", is_comparison=True)("*[^ -~]*")),
            each.c.key != key,
        )
    )
    # One CASE on one json_type: a third of the time of testing the type three times, for every contact of
    # every range.
    value_not_plain = cast(func.json_extract(Contact.properties, path), String).op(
        "GLOB", is_comparison=True
    )("*[^ -~]*")
    return case(
        # Python looks the key up without case only when it is absent ("")
        {"text": value_not_plain, "": other},
        value=func.coalesce(func.json_type(Contact.properties, path), ""),
        else_=true(),
    )


def _due_at_by_zone(
    session: Session,
    definition: CampaignDefinition,
    low: int,
    high: int,
    *,
    now: datetime,
    default_timezone: str,
) -> ColumnElement[datetime]:
    """The invitation's due time: `now` moved into the send window of the contact's zone (one value per zone)."""
    names = session.scalars(
        select(Contact.timezone)
        .where(Contact.id.between(low, high), Contact.timezone.is_not(None))
        .distinct()
    ).all()

    def due_in(name: str | None) -> datetime:
        return next_send_time(
            definition.send_window, zone_for(name, definition.timezone, default_timezone), now
        )

    fallback = _at(due_in(None))
    if not names:
        return fallback
    whens: Sequence[tuple[ColumnElement[bool], ColumnElement[datetime]]] = [
        (Contact.timezone == name, _at(due_in(name))) for name in names
    ]
    return case(*whens, else_=fallback)


def _at(moment: datetime) -> ColumnElement[datetime]:
    return literal(moment, UTCDateTime())


def _token(dialect: str) -> ColumnElement[str]:
    """An unguessable survey token per row, made by the database."""
    if dialect == "sqlite":
        return func.nps_token()  # secrets.token_urlsafe(16), as the contact-by-contact planner makes
    # 16 bytes of a version 4 UUID (122 random bits from the server's strong generator), URL-safe base64.
    raw = func.decode(func.replace(cast(func.gen_random_uuid(), String), "-", ""), "hex")
    return func.translate(func.encode(raw, "base64"), "+/=", "-_")


# For one range's transaction (see _prepare).
_RANGE_SETTINGS = "SET LOCAL jit = off; SET LOCAL enable_seqscan = off"


def _prepare(session: Session) -> None:
    """SQLite computes the phase and the token with the Python functions themselves (same answers).

    PostgreSQL plans a range's statements without JIT compilation, for this transaction only: their estimated
    cost crosses `jit_above_cost`, and compiling them took longer than running them on a range's contacts. (Each
    range's statements are planned for its own bounds: see `_between`.)
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_RANGE_SETTINGS))
        return
    if session.get_bind().dialect.name != "sqlite":
        return
    raw = session.connection().connection.driver_connection
    assert raw is not None
    raw.create_function("nps_phase_days", 3, phase_days, deterministic=True)
    raw.create_function("nps_token", 0, _new_tokens().__next__)


def _new_tokens(batch: int = 1000) -> Iterator[str]:
    """`secrets.token_urlsafe(16)` tokens, the random bytes read a thousand tokens at a time: one read of the
    system's random source per token cost a planner of a million contacts seconds."""
    while True:
        pool = secrets.token_bytes(16 * batch)
        for start in range(0, len(pool), 16):
            yield base64.urlsafe_b64encode(pool[start : start + 16]).rstrip(b"=").decode("ascii")


def _plain(text: str) -> bool:
    return set(text) <= _ASCII_ONLY
