"""Every page works with no internet: nothing a page or the API docs load comes from outside.

A page is fetched through Django's test client; each script, stylesheet, image, icon, frame and
CSS ``url()``/``@import`` it references must be served by this server (the referenced file is
fetched too, so a local link that 404s fails as well).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.network.factories import build_world

pytestmark = pytest.mark.django_db

# Attributes through which a browser loads something by itself.
LOADING = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"), ("source", "src"),
           ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data"), ("image", "href")}
# Plotly's bundle names a CDN for map icons and geo outlines, used only by map and geo traces,
# which the portal does not draw; tests/portal/test_browser.py checks in Chromium that no
# request leaves the server on the pages that draw plots.
PLOTLY_BUNDLE = "/static/vendor/plotly.min.js"
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""")


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (tag, name) in LOADING:
                # <link rel="canonical"> and friends do not load; stylesheets, icons, preloads do.
                if tag == "link" and not re.search(r"stylesheet|icon|preload|modulepreload|manifest",
                                                   dict(attrs).get("rel") or ""):
                    continue
                self.urls.append(value)
            if name == "style" and value:
                self.inline_css.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.inline_css.append(data)


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls + [u for css in parser.inline_css for u in CSS_URL.findall(css)]


def is_outside(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.netloc) and parts.hostname not in ("testserver", "localhost", "127.0.0.1")


def local_body(client: Client, url: str) -> bytes:
    """The bytes the server gives for a local URL: static files from the finders, else a GET."""
    from django.conf import settings

    path = urlsplit(url).path
    if path.startswith(settings.STATIC_URL):
        found = finders.find(path[len(settings.STATIC_URL):])
        assert found, f"{url} is referenced but no static file serves it"
        with open(found, "rb") as handle:
            return handle.read()
    response = client.get(path)
    assert response.status_code == 200, f"{url} is referenced but answers {response.status_code}"
    return response.content if not response.streaming else b"".join(response.streaming_content)


def check_page(client: Client, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code in (200, 404), (path, response.status_code)
    html = response.content.decode()
    urls = references(html)
    outside = [u for u in urls if is_outside(u)]
    assert not outside, f"{path} loads from outside the server: {outside}"
    for url in urls:
        if url.startswith("data:"):
            continue
        absolute = urljoin(f"http://testserver{path}", url)
        body = local_body(client, absolute)
        if absolute.endswith(".css"):
            for inner in CSS_URL.findall(body.decode(errors="replace")):
                assert not is_outside(inner) and not inner.startswith("//"), f"{url} imports {inner}"
        if absolute.endswith(".js") and not absolute.endswith(PLOTLY_BUNDLE):
            # A bundle may mention URLs in strings (licences, docs); what matters is that it
            # does not load a script or stylesheet from a CDN by itself.
            assert not re.search(rb"(cdn\.jsdelivr|unpkg\.com|cdnjs\.|fonts\.googleapis)", body), url
    return urls


@pytest.fixture
def member_client():
    world = build_world()
    client = Client()
    client.force_login(world.a_owner)
    return client


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/no/such/page"])
def test_anonymous_pages_load_nothing_from_outside(path):
    check_page(Client(), path)


@pytest.mark.parametrize("path", ["/", "/api/v1/docs/", "/api/v1/sites"])
def test_member_pages_and_the_api_docs_load_nothing_from_outside(member_client, path):
    urls = check_page(member_client, path)
    if path == "/api/v1/docs/":
        # Swagger UI itself comes from this server (drf-spectacular-sidecar), not a CDN.
        assert any("swagger-ui-bundle" in u for u in urls), urls


def test_the_portal_has_a_favicon():
    response = Client().get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # the ICO signature
