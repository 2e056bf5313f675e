"""The deployment guides hold together: their config examples pass `hub check`, their links land."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("name", ["synology.md", "google.md", "nas-guide.md", "operations.md"])
def test_links_between_the_guides_land(name):
    text = (DOCS / name).read_text()
    for target, anchor in re.findall(r"\]\(([\w.-]*\.md|)#([\w-]+)\)", text):
        assert anchor in anchors(DOCS / (target or name)), f"{name}: {target}#{anchor}"
    for target in re.findall(r"\]\(([\w.-]+\.md)\)", text):
        assert (DOCS / target).is_file(), f"{name}: {target}"


def test_the_synology_config_example_passes_hub_check(tmp_path, monkeypatch, settings):
    from tests.config.conftest import call_hub

    text = (DOCS / "synology.md").read_text()
    block = text.split("### 3. The config file")[1].split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "hub.yaml"
    path.write_text(block)
    for variable in re.findall(r"\$\{([A-Z_]+)\}", block):
        monkeypatch.setenv(variable, "hJ7kQ2xV9mN4pR8tW3zB6cF1gL5sD0aY")
    settings.HUB_ISSUER_FROM_ENV = False
    result = call_hub("check", str(path))
    assert result.code == 0, result.err
    assert sorted(set(re.findall(r"\$\{([A-Z_]+)\}", block))) == ["DSM_CLIENT_SECRET", "GOOGLE_CLIENT_SECRET",
                                                                 "SYNO_PASSWORD"]


def test_the_redirect_uri_google_is_given_is_the_one_the_hub_uses(settings):
    from django.urls import reverse

    from accounts.admin import UpstreamAdmin
    from accounts.strategy import HubStrategy

    text = " ".join((DOCS / "google.md").read_text().split())
    assert "<issuer>/complete/<upstream-id>/" in text
    settings.HUB_ISSUER = "https://hub.example.com"
    built = HubStrategy(storage=None).build_absolute_uri(reverse("accounts:complete", args=["google"]))
    assert built == "https://hub.example.com/complete/google/"
    assert f"Authorized redirect URIs | **+ Add URI**: `{built}`" in text
    label = str(UpstreamAdmin.redirect_uri.short_description)
    assert f"*{label}*" in text  # the console's column, as it is labelled
