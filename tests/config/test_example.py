"""deploy/hub.example.yaml passes `hub check` with the three variables its header names."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.models import User

EXAMPLE = str(Path(__file__).resolve().parents[2] / "deploy" / "hub.example.yaml")
VARIABLES = ("GOOGLE_CLIENT_SECRET", "SYNO_PASSWORD", "DSM_CLIENT_SECRET")

pytestmark = pytest.mark.django_db


def test_example_needs_exactly_three_variables(run_hub, monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    result = run_hub("check", EXAMPLE)
    assert result.code == 1
    missing = sorted(line.rsplit(" ", 4)[-4] for line in result.err.splitlines())
    assert missing == sorted(VARIABLES), result.err
    header = Path(EXAMPLE).read_text().split("version: 1")[0]
    assert all(name in header for name in VARIABLES)


def test_example_checks_plans_and_applies(run_hub, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", "GOCSPX-example")
    monkeypatch.setenv("SYNO_PASSWORD", "sync password")
    monkeypatch.setenv("DSM_CLIENT_SECRET", "tq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=")
    assert run_hub("check", EXAMPLE).code == 0
    assert run_hub("plan", EXAMPLE).out.endswith("Plan: 8 to create, 0 to change, 0 to remove.\n")
    assert run_hub("apply", EXAMPLE).code == 0
    assert run_hub("plan", EXAMPLE).out == "No changes.\n"


def test_the_reference_example_plans_as_documented(run_hub, tmp_path, monkeypatch, settings):
    """docs/configuration.md "Example": its file gives exactly the plan printed under it."""
    reference = (Path(EXAMPLE).parents[1] / "docs" / "configuration.md").read_text().split("\n## Example\n")[1]
    yaml_text = reference.split("```yaml\n")[1].split("```")[0]
    plan_text = reference.split("```text\n")[1].split("```")[0].splitlines()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "syno_password").write_text("sync password\n")
    (tmp_path / "hub.yaml").write_text(yaml_text)
    settings.HUB_ISSUER_FROM_ENV = False  # the example's issuer is https://id.example.com
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", "GOCSPX-example")
    monkeypatch.setenv("DSM_CLIENT_SECRET", "tq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=")
    assert plan_text[0] == "$ python manage.py hub plan hub.yaml"
    result = run_hub("plan", str(tmp_path / "hub.yaml"))
    assert result.code == 0, result.err
    assert result.out.splitlines() == plan_text[1:]
    assert run_hub("apply", str(tmp_path / "hub.yaml")).code == 0
    assert list(User.objects.filter(is_superuser=True).values_list("email", flat=True)) == ["mael@example.com"]


def test_the_commented_operators_line_works_once_uncommented(run_hub, monkeypatch, tmp_path):
    text = Path(EXAMPLE).read_text()
    assert "\n# operators: [mael@example.com]\n" in text
    path = tmp_path / "hub.yaml"
    path.write_text(text.replace("\n# operators: [mael@example.com]\n", "\noperators: [mael@example.com]\n"))
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", "GOCSPX-example")
    monkeypatch.setenv("SYNO_PASSWORD", "sync password")
    monkeypatch.setenv("DSM_CLIENT_SECRET", "tq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=")
    plan = run_hub("plan", str(path))
    assert plan.code == 0, plan.err
    assert "~ operators: +mael@example.com" in plan.out.splitlines()
    assert plan.out.endswith("Plan: 8 to create, 1 to change, 0 to remove.\n")
