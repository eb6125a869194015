"""What every command shares: settings and container, built on first use so `--help` needs neither."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from service.container import Container, build_container
from service.logs import configure_logging
from service.settings import Settings, SettingsError, load_settings


@dataclass
class CliContext:
    env_file: str
    _settings: Settings | None = field(default=None, init=False)
    _container: Container | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(env_file=self.env_file)
            except SettingsError as error:
                raise click.ClickException(f"configuration error: {error}") from None
            configure_logging(
                self._settings.log_level,
                fmt=self._settings.log_format,
                libraries=self._settings.log_libraries,
            )
        return self._settings

    @property
    def container(self) -> Container:
        if self._container is None:
            self._container = build_container(self.settings)
        return self._container

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


pass_context = click.make_pass_decorator(CliContext)
