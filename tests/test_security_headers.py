"""Security headers: a strict CSP and no framing everywhere; HSTS only over TLS, in production."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.test import Client

from tests.pages import person

ROOT = Path(__file__).resolve().parent.parent
SECURITY_SETTINGS = (
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "X_FRAME_OPTIONS",
    "SHIPLOG_CSP",
    "SHIPLOG_TRUSTED_PROXIES",
    "MIDDLEWARE",
)


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, settings: Any) -> ModuleType:
    """Apply the production settings' security values, read from config/settings/production.py.

    The module is run as a deployment would run it (with its required environment), on a
    fresh copy of the base settings, and its security settings replace the test ones.
    """
    monkeypatch.setenv("SECRET_KEY", "production-like-test-key")
    monkeypatch.setenv("DATABASE_URL", "postgres://shiplog@db.invalid:5432/shiplog")
    monkeypatch.setenv("REDIS_URL", "redis://cache.invalid:6379/0")
    base = _load("config.settings.base", ROOT / "config/settings/base.py")
    monkeypatch.setitem(sys.modules, "config.settings.base", base)
    module = _load("shiplog_production_settings", ROOT / "config/settings/production.py")
    for name in SECURITY_SETTINGS:
        setattr(settings, name, getattr(module, name))
    return module


def test_hsts_is_sent_over_tls_behind_the_proxy_and_never_over_plain_http(production, db):
    # The security middleware reads its settings when the client first builds the stack.
    client = Client()
    secure = client.get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    plain = client.get("/login/")
    assert "Strict-Transport-Security" not in plain
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/login/"


def test_production_cookies_go_over_tls_only(production, db):
    person("mara")
    client = Client()
    https = {"X-Forwarded-Proto": "https"}
    page = client.get("/login/", headers=https)
    assert page.cookies["csrftoken"]["secure"]
    login = client.post("/login/", {"username": "mara", "password": "pw-mara"}, headers=https)
    assert login.status_code == 302
    assert login.cookies["sessionid"]["secure"]


def test_the_embedded_default_sends_no_hsts(client, db):
    """Local HTTP on 127.0.0.1 must not pin the browser to HTTPS for a year."""
    response = client.get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response


@pytest.mark.parametrize(
    "url", ["/login/", "/api/v1/releases/", "/api/schema/", "/no-such-page/", "/hooks/github/"]
)
def test_every_kind_of_answer_has_a_strict_csp_and_refuses_framing(client, db, url):
    """Pages, API errors, the schema, 404s and webhook answers alike."""
    response = client.get(url)
    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
