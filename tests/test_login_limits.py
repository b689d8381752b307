"""Failed logins are limited per username and client address, on the pages and in the admin."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from releases.access import MAINTAINERS
from tests.pages import person

pytestmark = pytest.mark.django_db

HOME = "10.0.0.1"
ELSEWHERE = "10.0.0.2"


@pytest.fixture
def mara(db: None) -> User:
    return person("mara", MAINTAINERS)


def log_in(
    client: Client, username: str, password: str, address: str = HOME, forwarded: str = ""
) -> Any:
    """Post the login form from `address` (through a proxy if `forwarded` is given)."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(
        "/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        headers=headers,
    )


def fail(client: Client, times: int, username: str = "mara", address: str = HOME) -> None:
    for _ in range(times):
        response = log_in(client, username, "wrong", address)
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()


def signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_after_five_failures_even_the_right_password_is_refused(client, mara):
    fail(client, 5)
    response = log_in(client, "mara", "pw-mara")
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "Too many failed logins. Try again in 15 minutes." in response.content.decode()
    assert not signed_in(client)


def test_below_the_limit_the_right_password_works_and_starts_the_count_again(client, mara):
    fail(client, 4)
    assert log_in(client, "mara", "pw-mara").status_code == 302
    assert signed_in(client)
    client.post("/logout/")
    # Without the fresh count these would make eight failures, past the limit.
    fail(client, 4)
    assert log_in(client, "mara", "pw-mara").status_code == 302


def test_the_limit_is_per_username_and_address(client, mara):
    person("vic")
    fail(client, 5, "mara", HOME)
    assert log_in(client, "mara", "pw-mara", HOME).status_code == 429
    assert log_in(client, "mara", "pw-mara", ELSEWHERE).status_code == 302
    client.post("/logout/")
    assert log_in(client, "vic", "pw-vic", HOME).status_code == 302


def test_an_address_that_fails_for_many_usernames_is_refused(client, mara, settings):
    settings.SHIPLOG_LOGIN_FAILURES_PER_ADDRESS = 6
    for number in range(6):
        fail(client, 1, f"guess{number}", HOME)
    assert log_in(client, "mara", "pw-mara", HOME).status_code == 429
    assert log_in(client, "mara", "pw-mara", ELSEWHERE).status_code == 302


def test_the_refusal_ends_with_the_window(client, mara, settings):
    settings.SHIPLOG_LOGIN_WINDOW_SECONDS = 1
    fail(client, 5)
    assert log_in(client, "mara", "pw-mara").status_code == 429
    time.sleep(1.1)
    assert log_in(client, "mara", "pw-mara").status_code == 302


def test_the_admin_login_is_limited_and_shares_the_count(client):
    person("root", is_staff=True, is_superuser=True)
    for _ in range(3):
        client.post("/admin/login/", {"username": "root", "password": "nope"}, REMOTE_ADDR=HOME)
    fail(client, 2, "root")  # failures on either form count for both
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "pw-root"}, REMOTE_ADDR=HOME
    )
    assert "Too many failed logins. Try again in 15 minutes." in response.content.decode()
    assert client.get("/admin/").status_code == 302  # still sent to log in
    assert log_in(client, "root", "pw-root").status_code == 429


def test_behind_a_proxy_the_address_it_saw_is_the_one_counted(client, mara, settings):
    settings.SHIPLOG_TRUSTED_PROXIES = 1
    proxy = "192.0.2.10"
    for _ in range(5):
        log_in(client, "mara", "wrong", proxy, forwarded=HOME)
    assert log_in(client, "mara", "pw-mara", proxy, forwarded=HOME).status_code == 429
    # A client cannot pick its address by writing one in front of the proxy's.
    spoofed = f"{ELSEWHERE}, {HOME}"
    assert log_in(client, "mara", "pw-mara", proxy, forwarded=spoofed).status_code == 429
    assert log_in(client, "mara", "pw-mara", proxy, forwarded=ELSEWHERE).status_code == 302


def test_an_unreachable_cache_lets_people_log_in(client, mara, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    log_in(client, "mara", "wrong")
    assert log_in(client, "mara", "pw-mara").status_code == 302
    assert "login limits unavailable, not enforced" in caplog.text


def test_the_limit_holds_on_redis_where_production_counts(mara, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    }
    fail(Client(), 5)
    assert log_in(Client(), "mara", "pw-mara").status_code == 429
    assert log_in(Client(), "mara", "pw-mara", ELSEWHERE).status_code == 302
