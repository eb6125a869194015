"""`nps campaigns apply|list|preview|test|pause|resume`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.cli.context import CliContext, pass_context

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from campaigns.definitions.model import CampaignDefinition
    from storage.enums import CampaignStatus


@click.group("campaigns")
def campaigns_group() -> None:
    """Campaigns: who is surveyed, when, and how."""


@campaigns_group.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def apply_command(ctx: CliContext, file: Path) -> None:
    """Create or update the campaigns of a YAML file (matched by name)."""
    from campaigns.contacts.store import property_names
    from campaigns.definitions.campaign_file import parse_campaign_file
    from campaigns.definitions.problems import CampaignFileError
    from campaigns.definitions.store import AnonymityKept

    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file}: not UTF-8 text") from None
    with ctx.container.db.transaction() as session:
        known_properties = property_names(session=session)
    try:
        parsed = parse_campaign_file(text, known_properties=known_properties)
    except CampaignFileError as error:
        raise click.ClickException(f"{file}: invalid campaign file\n{error}") from None
    for warning in parsed.warnings:
        click.echo(f"warning: {warning}", err=True)
    try:
        with ctx.container.db.transaction() as session:
            results = _apply_and_audit(parsed.campaigns, session=session)
    except AnonymityKept as refused:
        raise click.ClickException(f"{file}: nothing applied: {refused}") from None
    for name, outcome in results:
        click.echo(f"{name}: {outcome}")


def _apply_and_audit(definitions: Sequence[CampaignDefinition], *, session: Session) -> list[tuple[str, str]]:
    from campaigns.definitions.store import apply_definitions
    from storage.audit import record_audit
    from storage.enums import AuditAction, AuditEntity

    applied = {"created": AuditAction.CAMPAIGN_CREATED, "updated": AuditAction.CAMPAIGN_UPDATED}
    results = apply_definitions(definitions, session=session)
    for name, outcome in results:
        if outcome in applied:
            record_audit(
                session=session,
                actor="cli",
                action=applied[outcome],
                entity_type=AuditEntity.CAMPAIGN,
                entity_id=name,
            )
    return results


@campaigns_group.command("list")
@pass_context
def list_command(ctx: CliContext) -> None:
    """Campaigns with their status, invitation counts and the surveys planned for today and the next 7 days."""
    from rich.console import Console
    from rich.table import Table

    from campaigns.definitions.store import summaries
    from campaigns.planning.forecast import forecast

    container = ctx.container
    with container.db.transaction() as session:
        rows = summaries(session=session)
    if not rows:
        click.echo("no campaigns yet; define some in a YAML file and run `nps campaigns apply FILE`")
        return
    ahead = forecast(container.db, now=container.clock.now(), rules=container.planning_rules)
    table = Table(
        "name",
        "kind",
        "status",
        "planned today",
        "next 7 days",
        "queued",
        "sent",
        "responded",
        "skipped/cancelled",
        "failed",
    )
    for row in rows:
        c = row.counts
        planned = ahead.get(row.id)
        table.add_row(
            row.name,
            row.kind + (f" ({row.event})" if row.event else "") + (" · anonymous" if row.anonymous else ""),
            row.status.value,
            str(planned.today if planned else 0),
            str(planned.week if planned else 0),
            str(c.get("planned", 0) + c.get("claimed", 0)),
            str(sum(c.get(s, 0) for s in ("sent", "delivered", "responded", "expired"))),
            str(row.responses),
            str(c.get("cancelled", 0)),
            str(c.get("failed", 0) + c.get("undeliverable", 0) + c.get("review", 0)),
        )
    Console(width=160).print(table)


@campaigns_group.command("preview")
@click.argument("name")
@click.option("--contact", "external_id", help="A contact's external_id: their name, properties and locale.")
@click.option("--locale", help="The locale to show (default: the contact's, else the campaign's).")
@pass_context
def preview_command(ctx: CliContext, name: str, external_id: str | None, locale: str | None) -> None:
    """Every text the campaign would send, with SMS segments and encoding (GSM-7 or UCS-2)."""
    from campaigns.contacts.store import get_contact_by_external_id
    from campaigns.definitions.json_codec import definition_from_json
    from campaigns.definitions.store import get_campaign
    from campaigns.messages.preview import preview_texts
    from campaigns.messages.templates import SAMPLE_VARIABLES

    person, properties = str(SAMPLE_VARIABLES["name"]), {"company": SAMPLE_VARIABLES["company"]}
    with ctx.container.db.transaction() as session:
        campaign = get_campaign(name, session=session)
        if campaign is None:
            raise click.ClickException(f"no campaign named {name!r}; `nps campaigns list` shows them")
        definition = definition_from_json(campaign.definition)
        if external_id is not None:
            contact = get_contact_by_external_id(external_id, session=session)
            if contact is None:
                raise click.ClickException(f"no contact with external_id {external_id!r}")
            person, properties, locale = (
                contact.name or "",
                dict(contact.properties),
                locale or contact.locale,
            )
    if definition.brand:
        properties.pop("company", None)  # the sample company stands in only for a campaign without a brand
    for text in preview_texts(
        definition,
        name=person,
        properties=properties,
        locale=locale,
        public_base_url=ctx.settings.public_base_url,
    ):
        click.echo(f"{text.heading}\n{text.text}\n")


@campaigns_group.command("test")
@click.argument("name")
@click.option("--to", "address", required=True, help="A phone number (E.164) or an email address.")
@pass_context
def test_command(ctx: CliContext, name: str, address: str) -> None:
    """Send one real survey of the campaign to a test address, now; it never counts in the statistics."""
    from campaigns.definitions.json_codec import definition_from_json
    from campaigns.definitions.store import get_campaign
    from campaigns.planning.trial import TrialError, plan_trial, trial_channel
    from campaigns.privacy import mask_email, mask_phone
    from storage.enums import Channel, InvitationState
    from storage.tables import Contact, Invitation

    container = ctx.container
    with container.db.transaction() as session:
        campaign = get_campaign(name, session=session)
        if campaign is None:
            raise click.ClickException(f"no campaign named {name!r}; `nps campaigns list` shows them")
        channels = definition_from_json(campaign.definition).channels
        try:
            invitation = plan_trial(campaign, channels, address, session=session, now=container.clock.now())
        except TrialError as error:
            raise click.ClickException(f"--to: {error}") from None
        invitation_id = invitation.id
    dispatcher = container.new_dispatcher()
    try:
        dispatcher.run_batch(only=[invitation_id])  # this survey alone, not whatever else is due
    finally:
        dispatcher.close()
    with container.db.transaction() as session:
        sent = session.get(Invitation, invitation_id)
        assert sent is not None
        state, last_error, channel = sent.state, sent.last_error, sent.channel or trial_channel(address)
        contact = session.get(Contact, sent.contact_id)
        assert contact is not None
        shown = mask_phone(contact.phone) if channel is Channel.SMS else mask_email(contact.email)
    if state is not InvitationState.SENT:
        raise click.ClickException(
            f"{name}: the test survey was not sent ({state.value}): {last_error or 'see the log'}"
        )
    click.echo(f"{name}: test survey sent by {channel} to {shown}; it never counts in the statistics")


def _set_status(ctx: CliContext, name: str, status: CampaignStatus) -> None:
    from campaigns.definitions.store import set_status
    from storage.audit import record_audit
    from storage.enums import AuditAction, AuditEntity, CampaignStatus

    with ctx.container.db.transaction() as session:
        campaign = set_status(name, status, session=session)
        if campaign is None:
            raise click.ClickException(f"no campaign named {name!r}; `nps campaigns list` shows them")
        record_audit(
            session=session,
            actor="cli",
            action=AuditAction.CAMPAIGN_PAUSED
            if status is CampaignStatus.PAUSED
            else AuditAction.CAMPAIGN_RESUMED,
            entity_type=AuditEntity.CAMPAIGN,
            entity_id=name,
        )
    click.echo(f"{name}: {status.value}")


@campaigns_group.command("pause")
@click.argument("name")
@pass_context
def pause_command(ctx: CliContext, name: str) -> None:
    """Stop planning and sending for a campaign; queued invitations wait."""
    from storage.enums import CampaignStatus

    _set_status(ctx, name, CampaignStatus.PAUSED)


@campaigns_group.command("resume")
@click.argument("name")
@pass_context
def resume_command(ctx: CliContext, name: str) -> None:
    """Resume a paused campaign."""
    from storage.enums import CampaignStatus

    _set_status(ctx, name, CampaignStatus.ACTIVE)


def register(cli: click.Group) -> None:
    cli.add_command(campaigns_group)
