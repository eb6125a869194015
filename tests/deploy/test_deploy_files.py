"""The deployment files, checked without Docker, systemd or Prometheus: every file they name exists, every `nps`
command they run parses with the real CLI, and every metric an alert rule reads is one `/metrics` exposes."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.cli import cli
from service.container import Container
from service.scheduler import Ticker
from service.web.app import create_app

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
GUIDE = ROOT / "docs" / "deploy.md"
# The suffixes prometheus-client's samples carry beyond their family's name, by type.
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}


def parse_nps(args: list[str]) -> click.Command:
    """The command `nps ARGS` would run; raises click's usage error for an unknown command or option."""
    command: click.Command = cli
    ctx = cli.make_context("nps", list(args), resilient_parsing=False)
    rest = [*ctx._protected_args, *ctx.args]  # what the group leaves for its subcommand
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None, f"nps has no command {name!r}"
        command = sub
        ctx = command.make_context(name or "", rest, parent=ctx)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    return command


# --- the Dockerfile ---------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = (line.strip() for line in joined.splitlines())
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def test_the_dockerfile_copies_only_files_that_exist_and_runs_as_a_user() -> None:
    instructions = dockerfile_instructions()
    copies = [args.split() for op, args in instructions if op == "COPY" and not args.startswith("--from")]
    assert copies
    for *sources, _target in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    ops = [op for op, _ in instructions]
    assert ops.index("USER") < ops.index("ENTRYPOINT")
    assert dict(instructions)["CMD"] == '["serve"]'


def test_the_packages_the_image_installs_are_the_ones_pyproject_ships() -> None:
    copied = {args.split()[0].rstrip("/") for op, args in dockerfile_instructions() if op == "COPY"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    [include] = re.findall(r"include = \[(.*?)\]", pyproject)
    packages = {name.strip(' "*') for name in include.split(",")}
    assert packages <= copied, f"pyproject ships {packages - copied}, which the image does not copy"


def test_the_entrypoint_migrates_before_the_scheduler_serves_and_only_then() -> None:
    text = ENTRYPOINT.read_text()
    assert ENTRYPOINT.stat().st_mode & 0o111, "the entrypoint must be executable"
    assert "nps db upgrade" in text and 'exec nps "$@"' in text
    assert text.index("nps db upgrade") < text.index('exec nps "$@"')
    assert "--no-scheduler" in text  # replicas do not migrate
    parse_nps(["db", "upgrade"])
    parse_nps(["serve"])


# --- systemd units ----------------------------------------------------------------------------------------------


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_there_are_units_for_the_scheduler_the_web_replicas_and_the_workers() -> None:
    names = {path.name for path in UNITS}
    assert {"nps-serve.service", "nps-web@.service", "nps-worker@.service"} <= names


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_runs_a_real_nps_command_as_the_nps_user(path: Path) -> None:
    service = unit(path)["Service"]
    assert service["User"] == "nps"
    assert service["Restart"] == "on-failure"
    for key in ("ExecStartPre", "ExecStart"):
        if key not in service:
            continue
        binary, *args = shlex.split(service[key].replace("%i", "8001"))
        assert binary.endswith("/nps"), service[key]
        parse_nps(args)


def test_only_the_scheduler_migrates_and_only_it_runs_the_scheduler() -> None:
    units = {path.name: unit(path)["Service"] for path in UNITS}
    assert units["nps-serve.service"]["ExecStartPre"].endswith("nps db upgrade")
    assert units["nps-serve.service"]["ExecStart"].endswith("nps serve")
    assert "--no-scheduler" in units["nps-web@.service"]["ExecStart"]
    assert "ExecStartPre" not in units["nps-web@.service"]
    assert units["nps-worker@.service"]["ExecStart"].endswith("nps worker")


def test_a_unit_that_cannot_parse_is_caught() -> None:
    with pytest.raises(click.UsageError):
        parse_nps(["serve", "--no-such-flag"])
    with pytest.raises(click.UsageError):
        parse_nps(["sever"])


# --- the guide ----------------------------------------------------------------------------------------------


def test_the_readme_links_the_guide_and_every_link_of_the_guide_resolves() -> None:
    assert "docs/deploy.md" in (ROOT / "README.md").read_text()
    guide = GUIDE.read_text()
    links = re.findall(r"\]\((\.\./[^)#]+)(?:#[^)]*)?\)", guide)
    assert links
    for link in links:
        assert (GUIDE.parent / link).resolve().exists(), f"docs/deploy.md links {link}, which does not exist"
    assert "SECURITY.md#secrets-and-how-to-rotate-them" in guide
    assert "## Secrets and how to rotate them" in (ROOT / "SECURITY.md").read_text()


def test_every_nps_command_the_guide_shows_parses() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), flags=re.S)
    commands = [
        shlex.split(line.split("#")[0])
        for block in blocks
        for line in block.splitlines()
        if re.match(r"\s*(nps|docker run .* nps-bot) ", line)
    ]
    shown = [command for command in commands if command[0] == "nps"]
    shown += [command[command.index("nps-bot") :] for command in commands if command[0] == "docker"]
    shown = [["nps", *command[1:]] for command in shown if len(command) > 1]
    assert shown
    for command in shown:
        parse_nps(command[1:])
    inline = re.findall(r"`(nps [a-z][^`]*)`", GUIDE.read_text())
    assert inline
    for text in inline:
        args = [arg for arg in shlex.split(text)[1:] if not arg.startswith("<")]
        if "..." not in args:
            parse_nps(args)


# --- alert rules --------------------------------------------------------------------------------------------


def exposed_names(client: TestClient) -> set[str]:
    """Every sample name /metrics can carry, empty families included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(client.get("/metrics").text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def alert_rules() -> list[dict[str, object]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_rule_reads_metrics_that_metrics_exposes(engine: Container) -> None:
    ticker = Ticker(engine, holder="serve-a")
    jobs = {job.id for job in ticker.scheduler.get_jobs()}
    try:
        ticker.renew_lease()
        ticker.scheduler.get_job("dispatch").func()
        with TestClient(create_app(engine, ticker=ticker)) as client:
            client.get("/healthz")
            names = exposed_names(client)
    finally:
        ticker.dispatcher.close()
    rules = alert_rules()
    assert len(rules) >= 10
    for rule in rules:
        expression = str(rule["expr"])
        named = set(re.findall(r"\bnps_[a-z0-9_]+", expression))
        assert named, f"{rule['alert']} reads none of our metrics: {expression}"
        assert named <= names, (
            f"{rule['alert']} reads {sorted(named - names)}, which /metrics does not expose"
        )
        assert set(re.findall(r'job="(\w+)"', expression)) <= jobs, f"{rule['alert']} names no scheduler job"


def test_every_alert_rule_says_how_bad_and_what_to_do() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule  # type: ignore[index]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule  # type: ignore[index]
