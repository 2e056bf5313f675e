"""deploy/hub.example.yaml passes `hub check` with the three variables its header names."""

from __future__ import annotations

from pathlib import Path

import pytest

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
