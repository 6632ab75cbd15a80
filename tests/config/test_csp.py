"""Every page carries a Content-Security-Policy that it passes: no inline script or style runs
unless it carries the request's nonce (or, for an email shown in a page, its hash)."""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from django_celery_beat.models import PeriodicTask
from hypothesis import given, settings
from hypothesis import strategies as st

from config.csp import inline_style_sources, sha256_source
from digest.delivery.archive import archive_url
from digest.models import Paper
from subscriptions import links
from subscriptions.models import Subscriber
from tests.config.conftest import NOW
from tests.conftest import PROJECT_DIR
from tests.subscriptions.conftest import sign_up_data

pytestmark = pytest.mark.django_db
EVENT_HANDLER = re.compile(r"^on[a-z]+$")


def policy_of(response: HttpResponse) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for directive in header.split(";"):
        name, *sources = directive.split()
        directives[name] = sources
    return directives


class InlineCode(HTMLParser):
    """Inline scripts and styles of a page, and the nonce each carries."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []  # nonce of each inline <script>
        self.styles: list[tuple[str | None, str]] = []  # (nonce, text) of each <style>
        self.style_attributes: list[str] = []
        self.event_handlers: list[str] = []
        self._style: tuple[str | None, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        executable = attributes.get("type") not in {"application/json", "application/ld+json"}
        if tag == "script" and not attributes.get("src") and executable:
            self.scripts.append(attributes.get("nonce"))
        if tag == "style":
            self._style = (attributes.get("nonce"), [])
        if attributes.get("style") is not None:
            self.style_attributes.append(attributes["style"])
        self.event_handlers += [name for name in attributes if EVENT_HANDLER.match(name)]

    def handle_data(self, data):
        if self._style is not None:
            self._style[1].append(data)

    def handle_endtag(self, tag):
        if tag == "style" and self._style is not None:
            self.styles.append((self._style[0], "".join(self._style[1])))
            self._style = None


def assert_passes_its_policy(response: HttpResponse) -> None:
    path = response.request["PATH_INFO"]
    policy = policy_of(response)
    scripts, styles = policy["script-src"], policy["style-src"]
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, path
    assert "'unsafe-inline'" not in styles, path
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"], path
    [nonce] = [source[7:-1] for source in scripts if source.startswith("'nonce-")]
    assert f"'nonce-{nonce}'" in styles, path
    if not response.get("Content-Type", "").startswith("text/html"):
        return
    page = InlineCode()
    page.feed(response.content.decode())
    assert all(script_nonce == nonce for script_nonce in page.scripts), (path, page.scripts)
    for style_nonce, text in page.styles:
        assert style_nonce == nonce or sha256_source(text) in styles, (path, text[:80])
    for value in page.style_attributes:
        assert "'unsafe-hashes'" in styles and sha256_source(value) in styles, (path, value)
    assert not page.event_handlers, (path, page.event_handlers)


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def public_pages(client: Client, reader: Subscriber) -> list[HttpResponse]:
    unsubscribe = path_of(links.unsubscribe_url(reader))
    return [
        client.get("/"),
        client.post("/subscribe/", sign_up_data(email="grace@example.org")),
        client.post("/subscribe/", sign_up_data(email="not an address")),
        client.get("/subscribe/"),
        client.get(reverse("subscriptions:check_inbox")),
        client.get(path_of(links.confirm_url(reader))),
        client.get(path_of(links.preferences_url(reader))),
        client.get(unsubscribe),
        client.get(path_of(archive_url(reader, NOW.date()))),
        client.post(
            path_of(links.one_click_unsubscribe_url(reader)), {"List-Unsubscribe": "One-Click"}
        ),
        client.get("/healthz"),
        client.get("/admin/login/"),
        client.get("/no-such-page/"),
    ]


def test_every_public_page_carries_a_policy_it_passes(client, reader):
    pages = public_pages(client, reader)

    assert [page.status_code for page in pages] == [
        200, 302, 400, 200, 200, 200, 200, 200, 200, 200, 200, 200, 404,
    ]  # fmt: skip
    for page in pages:
        assert_passes_its_policy(page)


def test_the_home_page_script_is_a_file_and_its_style_carries_the_nonce(client):
    first, second = client.get("/"), client.get("/")

    html = first.content.decode()
    assert '<script src="/static/pages/time-zone.js"></script>' in html
    nonces = [policy_of(page)["script-src"][1] for page in (first, second)]
    assert nonces[0] != nonces[1]  # fresh for every response, even from the cached page
    assert f'<style nonce="{nonces[0][7:-1]}">' in html


def test_the_archive_allows_exactly_the_inline_styles_of_its_email(client, reader):
    page = client.get(path_of(archive_url(reader, NOW.date())))

    styles = policy_of(page)["style-src"]
    assert set(inline_style_sources(page.content.decode())) <= set(styles)
    assert len(styles) == 3 + len(inline_style_sources(page.content.decode()))
    assert_passes_its_policy(page)


def test_admin_pages_pass_the_policy(client, reader, django_user_model):
    django_user_model.objects.create_superuser("editor", "editor@example.org", "a-long-passphrase")
    client.login(username="editor", password="a-long-passphrase")
    task = PeriodicTask.objects.first()
    assert task is not None  # seeded by the migration
    paper = Paper.objects.get()
    urls = [
        "/admin/",
        "/admin/digest/paper/",
        f"/admin/digest/paper/{paper.pk}/change/",
        "/admin/digest/ingestrun/",
        "/admin/digest/delivery/",
        "/admin/subscriptions/subscriber/",
        f"/admin/subscriptions/subscriber/{reader.pk}/change/",
        f"/admin/subscriptions/subscriber/{reader.pk}/preview/",
        f"/admin/django_celery_beat/periodictask/{task.pk}/change/",
        "/admin/auth/user/add/",
    ]
    for url in urls:
        page = client.get(url)
        assert page.status_code == 200, url
        assert_passes_its_policy(page)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_inline_style_hashes_cover_any_escaped_text(text):
    html = f'<p style="{escape(text)}">x</p><style>{text.replace("<", "")}</style>'

    sources = inline_style_sources(html)

    assert sha256_source(text) in sources
    assert sha256_source(text.replace("<", "")) in sources


PROBE_HSTS = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/no-such-page/", headers={"X-Forwarded-Proto": "https"})
print(json.dumps({
    "hsts": response.get("Strict-Transport-Security"),
    "csp": response.get("Content-Security-Policy"),
}))
"""


def production_env(tmp_path, **env: str) -> dict[str, str]:
    clean = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    return {
        **clean,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "x7!kq2-a-real-production-secret-9d8f7g6h5j4k3l2m1n0b9v8c7x6z5",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0",
        "PAPERBOY_VAR_DIR": str(tmp_path),
        **env,
    }


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> str:
    """Pages link hashed static files with DEBUG=0: collect them, as the Dockerfile does."""
    root = tmp_path_factory.mktemp("static")
    env = production_env(root, STATIC_ROOT=str(root))
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
    )
    return str(root)


def headers_in_production(tmp_path, static_root: str, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE_HSTS],
        cwd=PROJECT_DIR,
        env=production_env(tmp_path, STATIC_ROOT=static_root, **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_client_sent_forwarded_proto_does_not_turn_on_hsts(tmp_path, static_root):
    seen = headers_in_production(tmp_path, static_root)

    assert seen["hsts"] is None
    assert "script-src 'self' 'nonce-" in seen["csp"]


def test_behind_a_trusted_proxy_its_forwarded_proto_turns_on_hsts(tmp_path, static_root):
    seen = headers_in_production(tmp_path, static_root, TRUSTED_PROXY_COUNT="1")

    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
