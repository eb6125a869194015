"""The real `nps` executable: migrate, then serve, the way `make run` does."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nps(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).parent / "nps"
    return subprocess.run(
        [str(executable), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_db_upgrade_then_serve_answers_healthz_and_is_ready(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "TWILIO_EDGE": "", "TWILIO_REGION": ""}
    env.pop("DATABASE_URL", None)  # the default: sqlite:///./nps.db in the working directory

    refused = nps("serve", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "run `nps db upgrade`" in refused.stderr

    upgraded = nps("db", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "nps.db").exists()

    executable = Path(sys.executable).parent / "nps"
    server = subprocess.Popen(
        [str(executable), "serve"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "nps serve did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert checks["database"]["ok"] and checks["migrations"]["ok"]
        assert checks["scheduler"]["state"] == "active"  # this process took the lease at start
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=15)
    assert "SMS: Twilio not configured; messages go to the log transport" in stderr
    assert "Slack: not configured" in stderr
    assert "INFO uvicorn.error: Application startup complete" in stderr  # uvicorn writes through our handler


def test_a_bad_setting_is_a_clear_startup_error(tmp_path: Path) -> None:
    env = {**os.environ, "SMTP_STARTTLS": "perhaps"}
    result = nps("serve", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "configuration error: SMTP_STARTTLS must be true or false" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_and_worker_refuse_to_start_with_a_placeholder_secret(tmp_path: Path) -> None:
    env = {**os.environ, "NPS_SECRET_KEY": "change-me-to-a-long-random-string"}
    env.pop("DATABASE_URL", None)
    for command in ("serve", "worker"):
        refused = nps(command, env=env, cwd=tmp_path)
        assert refused.returncode == 1
        assert refused.stderr == (
            "Error: configuration error: NPS_SECRET_KEY is still the placeholder of config.example.env; "
            "set a real value or remove it\n"
        )
