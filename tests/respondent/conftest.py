from tests.engine.conftest import clock, dispatcher, engine, engine_settings  # noqa: F401  (shared fixtures)
