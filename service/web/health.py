"""`GET /healthz` and `GET /readyz`: is the process alive, and can the service do its work.

- `/healthz` is liveness: it answers as soon as the process answers HTTP and asks nothing else, the database least
  of all, so a database outage never makes an orchestrator restart web processes that recover by themselves.
- `/readyz` is readiness: 200 when every check passes, 503 otherwise, with a JSON reason per check: the database
  answers; its schema is at this release's Alembic head; the scheduler of this process ticks, holding the lease or
  standing by behind a live holder ("not run here" under `--no-scheduler`); no channel is paused
  (`campaigns.dispatch.pauses`); no Slack alerts are held (`bot.alert_holds`). Reasons are masked like log lines:
  the route needs no key.

Each check's reads run on one connection that gives up after :data:`READ_TIMEOUT` (`storage.bounded`):
`nps db upgrade` altering a table holds an ACCESS EXCLUSIVE lock for as long as it runs, and an orchestrator
gives a probe about a second before it marks the process dead, every web process at once. So the probe answers
503 saying the check timed out instead of hanging.

A paused channel or held alerts is a 503 because someone has to fix a setup; the web app still takes Twilio's and
Slack's requests meanwhile (the README says which probe to point a load balancer at).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from bot.alert_holds import APP_HOLD, outbox_health
from campaigns.dispatch.pauses import channel_pauses
from campaigns.privacy import mask_text
from service.container import Container
from storage.bounded import bounded_reads, timed_out
from storage.db import Database, current_revision
from storage.migrations_state import head_revision

if TYPE_CHECKING:
    from service.scheduler import Ticker

router = APIRouter(tags=["ops"])

Check = dict[str, Any]
NOT_CHECKED: Check = {"ok": False, "reason": "not checked: the database is unreachable"}
# How long one check may wait on the database (a lock, a slow statement) before it answers "timed out".
READ_TIMEOUT = timedelta(seconds=2)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Nothing else is asked (see /readyz)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: 200, or 503 naming the failing checks; every check says why."""
    checks = readiness(request.app.state.container, request.app.state.ticker)
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "unavailable" if failing else "ok", "failing": failing, "checks": checks}
    return JSONResponse(body, status_code=503 if failing else 200)


def readiness(container: Container, ticker: Ticker | None) -> dict[str, Check]:
    db = container.db
    reachable = db.is_reachable()

    def read(check: Callable[[Database], Check]) -> Check:
        if not reachable:
            return dict(NOT_CHECKED)
        try:
            with bounded_reads(db, READ_TIMEOUT) as bounded:
                return check(bounded)
        except OperationalError as error:
            if timed_out(error):
                seconds = READ_TIMEOUT.total_seconds()
                reason = f"timed out after {seconds:.0f} s: a table it reads is locked (a migration running?)"
                return {"ok": False, "reason": reason}
            return {"ok": False, "reason": f"could not be read: {type(error).__name__}"}
        except Exception as error:  # a table missing on an old schema, a connection lost meanwhile
            return {"ok": False, "reason": f"could not be read: {type(error).__name__}"}

    return {
        "database": {"ok": reachable, "reason": "reachable" if reachable else "unreachable"},
        "migrations": read(_migrations),
        "scheduler": _scheduler(container, ticker),
        "channels": read(_channels),
        "slack_alerts": (
            {"ok": True, "reason": "Slack not configured", "held": []}
            if container.slack is None
            else read(_slack_alerts)
        ),
    }


_head = cache(head_revision)  # the migration scripts do not change while the process runs


def _migrations(db: Database) -> Check:
    with db.transaction() as session:
        current = current_revision(session.connection())
    head = _head()
    if current == head:
        return {"ok": True, "reason": f"at head {head}", "current": current, "head": head}
    reason = f"the schema is at {current or 'no revision'}, this release needs {head}: run `nps db upgrade`"
    return {"ok": False, "reason": reason, "current": current, "head": head}


def _scheduler(container: Container, ticker: Ticker | None) -> Check:
    """Alive: the lease job (the scheduler's heartbeat, every tick) ran lately, and the lease is held here or by
    a live process. A process stops acting as scheduler two ticks after its last renewal (`Ticker.is_leader`)."""
    if ticker is None:
        return {"ok": True, "state": "not run here", "reason": "not run here (--no-scheduler)"}
    if ticker.last_tick is None:
        return {"ok": False, "state": "stopped", "reason": "not started"}
    tick = ticker.tick.total_seconds()
    age = (container.clock.now() - ticker.last_tick).total_seconds()
    last = {"last_tick": ticker.last_tick.isoformat()}
    if age > 2 * tick:
        reason = f"no tick for {age:.0f} s (one is due every {tick:.0f} s): the scheduler has stopped"
        return {"ok": False, "state": "stalled", "reason": reason, **last}
    if ticker.lease_error:
        reason = f"the scheduler lease could not be renewed ({ticker.lease_error}): standing by"
        return {"ok": False, "state": "standby", "reason": reason, **last}
    if ticker.is_leader():
        return {
            "ok": True,
            "state": "active",
            "reason": "active: this process holds the scheduler lease",
            **last,
        }
    reason = "standing by: another process holds the lease and runs the jobs"
    return {"ok": True, "state": "standby", "reason": reason, **last}


def _channels(db: Database) -> Check:
    with db.transaction() as session:
        pauses = channel_pauses(session=session)
    paused = [
        {
            "channel": pause.channel.value,
            "code": pause.code,
            "reason": mask_text(pause.reason),
            "since": pause.since.isoformat(),
            "next_probe": pause.until.isoformat(),
        }
        for pause in pauses
    ]
    reason = "; ".join(
        f"{p['channel']} paused since {p['since']} (error {p['code'] or 'none'}): {p['reason']}"
        for p in paused
    )
    return {"ok": not paused, "reason": reason or "no channel paused", "paused": paused}


def _slack_alerts(db: Database) -> Check:
    health = outbox_health(db)
    held = [
        {
            "channel": h.channel,
            "alerts": h.alerts,
            "reason": mask_text(h.reason),
            "until": h.until.isoformat(),
        }
        for h in health.held
    ]
    reason = "; ".join(
        f"every alert held, Slack refuses the app: {h['reason']}"
        if h["channel"] == APP_HOLD
        else f"{h['alerts']} alerts to {h['channel']} held: {h['reason']}"
        for h in held
    )
    return {
        "ok": not held,
        "reason": reason or "no alerts held",
        "held": held,
        "review": health.review,  # wait for a person (`nps alerts`), but hold nothing
        "failed": health.failed,
    }
