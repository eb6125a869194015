"""Events: opening the app's Home tab publishes the viewer's App Home."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.chart_blocks import post_with_chart_fallback
from bot.deps import SlackDeps
from bot.home import home_view


def register(app: App, deps: SlackDeps) -> None:
    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        view = home_view(deps.db, event["user"], now=deps.clock.now(), tz=deps.timezone, charts=deps.charts)
        post_with_chart_fallback(
            lambda shown: client.views_publish(user_id=event["user"], view={**view, "blocks": shown}),
            view["blocks"],
        )
