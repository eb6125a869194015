"""Attacks on the survey page after a first answer became Core statements: a score and its comment in one
request (the comment step reads the alert and the response the score step wrote without the unit of work)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from storage.enums import InvitationState
from storage.tables import FollowUp, Invitation, Response, SlackAlert
from tests.fixtures.survey import csrf_of, survey


def confirm(app: TestClient, token: str, score: int, comment: str) -> None:
    csrf = csrf_of(app.get(f"/s/{token}").text)
    page = app.post(
        f"/s/{token}", data={"csrf": csrf, "step": "score", "comment": comment, "score": str(score)}
    )
    assert page.status_code == 200 and page.url.path == f"/s/{token}/thanks"


def test_a_detractors_score_and_comment_in_one_request_release_its_alert_at_once(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    """The alert waits for the comment; a comment sent with the score releases it in the same transaction."""
    token = survey(engine, dispatcher)
    now = engine.clock.now()
    confirm(app, token, 2, "slow support")
    with engine.db.transaction() as session:
        response = session.scalars(select(Response)).one()
        invitation = session.scalars(select(Invitation)).one()
        [alert] = session.scalars(select(SlackAlert)).all()
        [case] = session.scalars(select(FollowUp)).all()
        assert (response.score, response.comment, response.late) == (2, "slow support", False)
        assert response.commented_at is not None
        assert invitation.state is InvitationState.RESPONDED and invitation.responded_at is not None
        assert alert.kind == "detractor" and alert.withdrawn_at is None
        assert alert.next_attempt_at.replace(tzinfo=None) <= now.replace(tzinfo=None)  # not ten minutes on
        assert case.response_id == response.id
