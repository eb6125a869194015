"""The Slack app manifest shipped with the bot (bot/manifest.yml): what the app asks Slack for."""

from __future__ import annotations

from importlib.resources import files

import yaml


def bot_scopes() -> tuple[str, ...]:
    """The bot token scopes the manifest requests: what the bot needs granted to do everything it does."""
    manifest = yaml.safe_load(files("bot").joinpath("manifest.yml").read_text(encoding="utf-8"))
    return tuple(manifest["oauth_config"]["scopes"]["bot"])
