"""Helpers for the family pages: parse a page and check it carries no inline script or style."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inline_scripts = 0
        self.style_attributes: list[str] = []
        self.style_elements = 0
        self.stylesheets: list[str] = []
        self.html_lang = None
        self.ids: dict[str, dict[str, str]] = {}
        self.external: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "style" in attributes:
            self.style_attributes.append(tag)
        if any(name.startswith("on") for name in attributes):  # onclick=… is an inline script too
            self.inline_scripts += 1
        if tag == "html":
            self.html_lang = attributes.get("lang")
        if tag == "script" and not attributes.get("src"):
            self.inline_scripts += 1
        if tag == "style":
            self.style_elements += 1
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes.get("href", ""))
        for name in ("src", "href"):
            if tag in {"script", "link", "img"} and (attributes.get(name) or "").startswith(("http:", "https:", "//")):
                self.external.append(attributes[name])
        if "id" in attributes:
            self.ids[attributes["id"]] = attributes


def parse(response) -> PageParser:
    parser = PageParser()
    parser.feed(response.content.decode())
    return parser


def assert_family_page(response, lang: str = "en") -> PageParser:
    """A hub page: our stylesheet only, no inline script or style, the CSP header, the language."""
    page = parse(response)
    assert page.inline_scripts == 0, "inline script"
    assert page.style_elements == 0 and page.style_attributes == [], page.style_attributes
    assert page.external == []
    assert page.stylesheets and all(href.endswith("/hub/hub.css") for href in page.stylesheets), page.stylesheets
    assert page.html_lang == lang
    csp = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
                      "frame-ancestors 'none'", "form-action 'self'"):
        assert directive in csp, (directive, csp)
    assert "unsafe-inline" not in csp
    return page


@pytest.fixture
def second_upstream(db):
    from accounts.services import declare_upstream

    return declare_upstream("work", "oidc", name="Work", issuer="https://login.example.org", client_id="hub",
                            client_secret="work-secret-0123456789-abcdefghijkl", position=1)
