"""Recording answers through the survey page's flow, against the database (the pages: tests/service/web/)."""

from __future__ import annotations

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.replies.survey_page import Outcome, record_answer
from service.container import Container
from tests.fixtures.survey import responses, survey


def test_a_score_corrected_on_the_page_after_expiry_is_marked_late(
    engine: Container, dispatcher: Dispatcher
) -> None:
    token = survey(engine, dispatcher)
    assert record_answer(token, 9, "", db=engine.db, now=engine.clock.now()) is Outcome.SCORED
    assert responses(engine)[0].late is False
    engine.clock.advance(days=15)  # type: ignore[attr-defined]
    assert record_answer(token, 4, "", db=engine.db, now=engine.clock.now()) is Outcome.SCORED
    [response] = responses(engine)
    assert (response.score, response.late) == (4, True)
