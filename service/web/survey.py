"""The hosted survey page (`/s/{token}`) and unsubscribing (`/u/{token}`): where the email's links lead.

Scanner safety. Mail security scanners (Outlook Safe Links, Proofpoint, Mimecast) fetch every link of an email
within seconds of delivery, and some fetch them again when it is opened. So no GET writes anything:
`GET /s/{token}?score=N` renders the page with N pre-selected and a Confirm button, and the score is recorded
on the first human action, the POST of that form. Scanners follow links; they do not submit forms carrying a
CSRF token. Fetching all eleven links of an email therefore stores nothing, whatever their timing, and a
person pays one extra click, in which they may also change the score and write the comment. Unsubscribing
follows the same rule: `GET /u/{token}` asks, only a POST unsubscribes. The RFC 8058 one-click POST (body
`List-Unsubscribe=One-Click`) is sent by the mail provider after the person pressed its own Unsubscribe button,
so it is honoured without a CSRF token; the unguessable invitation token in the URL is its authentication.

CSRF. Every form carries HMAC-SHA256(key, purpose + invitation token), compared in constant time, and a POST
whose Origin (or, without one, Referer) names another site is refused. A refusal is a 403 that stores nothing
and shows the form again with a valid token, so a person whose form outlived the key just clicks once more.
The key comes from NPS_SECRET_KEY; without it, a random key made per app on first use, which means a restart
invalidates open forms and replicas behind one load balancer refuse each other's forms: running more than one
web process needs NPS_SECRET_KEY set to one shared value.

Flow (post/redirect/get, so a reload never re-submits): link -> form with the score pre-selected and an
optional comment -> POST records both -> 303 to the comment step, or to the thank-you page once there is a
comment. While no comment exists a POST may change the score; after expiry answers are still accepted and kept as
late, under a notice that the survey has closed. That flow is :mod:`campaigns.replies.survey_page`; this module
only reads forms, checks their CSRF token, calls it and renders its answer with the right status code.

Texts. Every text on the pages comes from :class:`campaigns.messages.texts.ContactTexts` for the invitation: the
campaign's own wording where its file sets one (``messages: {de: {page_thanks: ...}}``), else the catalogue's,
in the language its invitation used. A link we do not know gets the catalogue's texts in the browser's language.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from campaigns.messages.branding import DEFAULT_ACCENT
from campaigns.messages.locales import text_direction
from campaigns.messages.templates import template_variables
from campaigns.messages.texts import ContactTexts, contact_texts
from campaigns.replies.survey_page import (
    Outcome,
    Survey,
    is_opted_out,
    load_survey,
    parse_score,
    record_answer,
    unsubscribe,
)
from service.container import Container
from service.web.api.auth import container_of, get_container

router = APIRouter(include_in_schema=False)
_HERE = Path(__file__).with_name("templates")
_templates = Jinja2Templates(directory=str(_HERE))
_CSS = (_HERE / "survey.css").read_bytes()

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",  # the token is in the URL: never hand it to another site
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
_key_lock = threading.Lock()


async def _read_form(request: Request) -> dict[str, str] | None:
    """The posted form fields, or None for a body that is not a form at all.

    A body over the router's limit (service/web/limits.py) is answered 413 while it is read.
    """
    try:
        form = await request.form(max_files=0, max_fields=20)
    except HTTPException as error:
        if error.status_code == status.HTTP_413_CONTENT_TOO_LARGE:
            raise
        return None  # malformed multipart, too many fields ...
    except Exception:  # a body that is not UTF-8 ...
        return None
    # PostgreSQL text cannot hold NUL (a 500 there); a comment keeps its place as a replacement character.
    return {
        key: value.replace("\x00", "\ufffd") for key, value in form.multi_items() if isinstance(value, str)
    }


def _survey(container: Container, token: str, *, any_state: bool = False) -> Survey | None:
    return load_survey(token, db=container.db, now=container.clock.now(), any_state=any_state)


# --- the survey page ----------------------------------------------------------------------------------------


@router.get("/s/assets/survey.css")
def stylesheet(container: Annotated[Container, Depends(get_container)]) -> Response:
    # The configured accent (checked for AA contrast when the settings load) replaces the default one.
    accent = container.settings.branding.accent
    css = _CSS.replace(f"--accent: {DEFAULT_ACCENT};".encode(), f"--accent: {accent};".encode())
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/s/{token}")
def survey_page(
    token: str, request: Request, container: Annotated[Container, Depends(get_container)]
) -> Response:
    """The page a score link opens: never writes (see the module docstring)."""
    survey = _survey(container, token)
    if survey is None:
        return _unknown(request)
    if survey.commented:
        return _message(request, survey, "page_already_answered")
    given = request.query_params.getlist("score")
    wanted = parse_score(given[0]) if len(given) == 1 else None  # "?score=5&score=6" picks neither
    return _form(request, container, survey, wanted)


@router.post("/s/{token}")
def submit(
    token: str,
    request: Request,
    form: Annotated[dict[str, str] | None, Depends(_read_form)],
    container: Annotated[Container, Depends(get_container)],
) -> Response:
    survey = _survey(container, token)
    if survey is None:
        return _unknown(request)
    if survey.commented:  # a double-clicked Send, a second tab: the answer is final, say thank you
        return _redirect(request, f"/s/{token}/thanks")
    if form is None:
        return _form(request, container, survey, None, status=400)
    if not _trusted(request, container, form, "survey", survey.token):
        return _form(request, container, survey, parse_score(form.get("score")), status=403, refused=True)
    comment = form.get("comment", "").strip()
    outcome = record_answer(
        token, parse_score(form.get("score")), comment, db=container.db, now=container.clock.now()
    )
    if outcome is Outcome.UNKNOWN:
        return _unknown(request)
    if outcome is Outcome.NEED_SCORE:
        return _form(request, container, survey, None, status=400, comment=comment, missing_score=True)
    if outcome is Outcome.SCORED and form.get("step") != "comment":
        return _redirect(request, f"/s/{token}")  # on to the comment step
    return _redirect(request, f"/s/{token}/thanks")


@router.get("/s/{token}/thanks")
def thanks(token: str, request: Request, container: Annotated[Container, Depends(get_container)]) -> Response:
    survey = _survey(container, token)
    if survey is None:
        return _unknown(request)
    if survey.score is None:
        return _redirect(request, f"/s/{token}")
    link = survey.promoter_link if survey.offers_link else None
    return _render(
        request, "message.html", survey.texts, survey.variables, 200, lead=survey.thanks, link=link
    )


# --- unsubscribing ------------------------------------------------------------------------------------------


@router.get("/u/{token}")
def unsubscribe_page(
    token: str, request: Request, container: Annotated[Container, Depends(get_container)]
) -> Response:
    """Asks before unsubscribing: a link scanner must not unsubscribe anyone."""
    survey = _survey(container, token, any_state=True)
    if survey is None or survey.address is None:
        return _unknown(request)
    if is_opted_out(survey, db=container.db):
        return _message(request, survey, "page_unsubscribed")
    return _unsubscribe_form(request, container, survey)


@router.post("/u/{token}")
def unsubscribe_submit(
    token: str,
    request: Request,
    form: Annotated[dict[str, str] | None, Depends(_read_form)],
    container: Annotated[Container, Depends(get_container)],
) -> Response:
    survey = _survey(container, token, any_state=True)
    if survey is None or survey.address is None:
        return _unknown(request)
    # RFC 8058: the mail provider's server posts this after the person pressed its Unsubscribe button.
    one_click = form is not None and form.get("List-Unsubscribe") == "One-Click"
    if not one_click and (
        form is None or not _trusted(request, container, form, "unsubscribe", survey.token)
    ):
        return _unsubscribe_form(request, container, survey, status=403, refused=True)
    unsubscribe(survey, one_click=one_click, db=container.db, now=container.clock.now())
    if one_click:
        return _message(request, survey, "page_unsubscribed")
    return _redirect(request, f"/u/{token}")


# --- CSRF ---------------------------------------------------------------------------------------------------


def csrf_token(key: bytes, purpose: str, token: str) -> str:
    return hmac.new(key, f"{purpose}:{token}".encode(), hashlib.sha256).hexdigest()


def _key(request: Request, container: Container) -> bytes:
    configured = container.settings.secret_key
    if configured:
        return hashlib.sha256(b"nps-survey-csrf:" + str(configured).encode()).digest()
    state = request.app.state
    with _key_lock:
        if not hasattr(state, "survey_csrf_key"):
            state.survey_csrf_key = secrets.token_bytes(32)
        key: bytes = state.survey_csrf_key
    return key


def _trusted(request: Request, container: Container, form: dict[str, str], purpose: str, token: str) -> bool:
    """A valid CSRF token and, when the browser says where the form came from, our own origin."""
    expected = csrf_token(_key(request, container), purpose, token)
    if not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        return False
    claimed = request.headers.get("origin") or _origin(request.headers.get("referer"))
    if not claimed:
        return True  # old browsers and privacy tools send neither; the CSRF token has been checked
    allowed = {_origin(container.settings.public_base_url), _origin(str(request.base_url))}
    return claimed.rstrip("/").lower() in allowed


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


# --- rendering ----------------------------------------------------------------------------------------------


def _translator(texts: ContactTexts, variables: dict[str, object]) -> Callable[..., str]:
    def t(key: str, default: str | None = None, **extra: object) -> str:
        try:
            return texts.text(key, **{**variables, **extra})
        except KeyError:  # a key the catalogue does not have yet: the English default given by the template
            if default is None:
                raise
            return default

    return t


def _render(
    request: Request,
    template: str,
    texts: ContactTexts,
    variables: dict[str, object],
    status: int,
    **context: Any,
) -> Response:
    """Render a page whose texts are the catalogue's, or the campaign's where it overrides them."""
    root = request.scope.get("root_path", "")
    branding = container_of(request).settings.branding
    headers = _HEADERS
    if branding.logo_url:
        # The logo is the one resource from elsewhere the page may load: its origin only.
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(branding.logo_url))
        policy = _HEADERS["Content-Security-Policy"] + f"; img-src {origin}"
        headers = {**_HEADERS, "Content-Security-Policy": policy}
    return _templates.TemplateResponse(
        request,
        template,
        {
            "lang": texts.language,  # the language the texts are really in
            "dir": text_direction(texts.language),
            "t": _translator(texts, variables),
            "css": f"{root}/s/assets/survey.css",
            "company": branding.company,
            "logo_url": branding.logo_url,
            **context,
        },
        status_code=status,
        headers=headers,
    )


def _form(
    request: Request,
    container: Container,
    survey: Survey,
    wanted: int | None,
    *,
    status: int = 200,
    refused: bool = False,
    comment: str = "",
    missing_score: bool = False,
) -> Response:
    return _render(
        request,
        "survey.html",
        survey.texts,
        survey.variables,
        status,
        step=survey.step(wanted),
        question=survey.question,
        selected=survey.score if wanted is None else wanted,
        stored=survey.score,
        expired=not survey.open,
        refused=refused,
        missing_score=missing_score,
        comment=comment,
        action=f"{request.scope.get('root_path', '')}/s/{survey.token}",
        csrf=csrf_token(_key(request, container), "survey", survey.token),
    )


def _unsubscribe_form(
    request: Request, container: Container, survey: Survey, *, status: int = 200, refused: bool = False
) -> Response:
    return _render(
        request,
        "unsubscribe.html",
        survey.texts,
        survey.variables,
        status,
        address=survey.masked_address,
        refused=refused,
        action=f"{request.scope.get('root_path', '')}/u/{survey.token}",
        csrf=csrf_token(_key(request, container), "unsubscribe", survey.token),
    )


def _message(request: Request, survey: Survey, key: str, *, status: int = 200) -> Response:
    return _render(request, "message.html", survey.texts, survey.variables, status, key=key)


def _unknown(request: Request) -> Response:
    """404 for a token we do not know; in the browser's language, since there is no contact to ask."""
    wanted = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()[:35]
    texts = contact_texts(None, wanted or None)
    return _render(
        request, "message.html", texts, template_variables(None, {}, None, ""), 404, key="page_unknown"
    )


def _redirect(request: Request, path: str) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}{path}", status_code=303, headers=_HEADERS)
