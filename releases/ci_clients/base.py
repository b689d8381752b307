"""What an outbound CI API call can come to, and the HTTP plumbing the platform clients share.

A call either succeeds (`Success`, with the parsed body) or raises one of three failures, so a
caller decides what to do from the class alone:

- `RateLimited`: wait `retry_after_seconds`, then try again. Clients never sleep themselves.
- `TransientFailure`: a 5xx, a timeout or a connection error; try again later.
- `PermanentFailure`: the request cannot succeed as it is (bad token, missing permission, not
  found, bad input); the reason says what to fix. Retrying does not help.

No message, log line or `repr` made here contains the token: messages built from a platform's
answer are scrubbed of it, and the token is checked before it goes into a header, because an
HTTP library's complaint about a bad header value quotes the value.
"""

from __future__ import annotations

import email.utils
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

# Without a hint from the platform, wait this long after a rate limit (GitHub's advice).
DEFAULT_RATE_LIMIT_WAIT = 60.0
_TOKEN_SHAPE = re.compile(r"^[\x21-\x7e]+$")
_REASON_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Success:
    """An answer the platform accepted: its status, parsed JSON body (None when empty), headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class CIClientError(Exception):
    """An outbound call that did not succeed; the message never contains the token."""


class RateLimited(CIClientError):
    """The platform is throttling this token: wait `retry_after_seconds`, then try again."""

    def __init__(self, retry_after_seconds: float, message: str) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class TransientFailure(CIClientError):
    """A 5xx, a timeout or a connection error: the same call may succeed later."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PermanentFailure(CIClientError):
    """The call cannot succeed as it is; `reason` says what to fix."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Call:
    """What a failed call means, for the messages of its failures."""

    description: str  # "rerun workflow 403d…", for messages and logs
    not_found: str  # the reason a 404 gives
    permission: str = ""  # the permission the call needs, when the platform names none
    unprocessable: str = ""  # the reason a 422 gives, before the platform's own message


@cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds; one context serves every client.
    return httpx.create_ssl_context()


def segment(value: str | int) -> str:
    """Return one URL path segment, escaped so that an id cannot change the path."""
    return quote(str(value), safe="")


def wait_seconds(value: str | None, now: float) -> float | None:
    """Return the wait a Retry-After header asks for (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def answer_message(response: httpx.Response) -> str:
    """Return the platform's own explanation from an error body, or ""."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:_REASON_LIMIT]
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str):
            return message
    return ""


class CIClient:
    """One platform's API with one token. Use it as a context manager, or call `close()`."""

    platform: ClassVar[str]
    base_url_setting: ClassVar[str]

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        timeout: float | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token or not _TOKEN_SHAPE.match(token):
            raise ValueError("a CI API token must be printable ASCII without spaces")
        self._token = token
        self._clock = clock
        self.base_url = (base_url or getattr(settings, self.base_url_setting)).rstrip("/")
        seconds = timeout if timeout is not None else settings.SHIPLOG_CI_API_TIMEOUT_SECONDS
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=self.auth_headers(token),
            timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
            follow_redirects=False,
            verify=_tls(),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def auth_headers(self, token: str) -> dict[str, str]:
        """Return the headers that authenticate and version every request."""
        raise NotImplementedError(".auth_headers() must be overridden")

    def scrub(self, text: str) -> str:
        """Return `text` with the token blanked out and cut to a readable length."""
        return text.replace(self._token, "[token]")[:_REASON_LIMIT]

    def request(
        self,
        method: str,
        url: str,
        call: Call,
        *,
        accept: tuple[int, ...] = (200,),
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Success:
        """Send one request; return its Success or raise the failure its answer means."""
        try:
            response = self._http.request(method, url, json=json, params=params)
        except httpx.TimeoutException as exc:
            raise TransientFailure(
                f"{self.platform} API timed out: {call.description} ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise TransientFailure(
                f"{self.platform} API unreachable: {call.description} ({type(exc).__name__})"
            ) from None
        logger.debug("%s %s -> %s", method, response.url.path, response.status_code)
        if response.status_code in accept:
            return Success(response.status_code, self._body(response, call), response.headers)
        raise self.failure(response, call)

    def _body(self, response: httpx.Response, call: Call) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PermanentFailure(
                response.status_code,
                f"{call.description}: the answer is not JSON, so what happened is unknown",
            ) from None

    def failure(self, response: httpx.Response, call: Call) -> CIClientError:
        """Return the failure an unaccepted answer means."""
        status = response.status_code
        message = self.scrub(answer_message(response))
        wait = self.rate_limit_wait(response, message)
        if wait is not None:
            return RateLimited(
                wait, f"{self.platform} API rate limit on {call.description}: retry in {wait:.0f} s"
            )
        if status >= 500:
            return TransientFailure(
                f"{self.platform} API answered {status} to {call.description}: "
                f"{message or 'server error'}",
                status,
            )
        return PermanentFailure(status, self.scrub(self.permanent_reason(response, call, message)))

    def rate_limit_wait(self, response: httpx.Response, message: str) -> float | None:
        """Return how long to wait if `response` is a rate limit, else None."""
        raise NotImplementedError(".rate_limit_wait() must be overridden")

    def permanent_reason(self, response: httpx.Response, call: Call, message: str) -> str:
        """Return what to fix, for an answer that no retry will change."""
        raise NotImplementedError(".permanent_reason() must be overridden")

    def now(self) -> float:
        """Return the clock used to turn reset times into waits."""
        return self._clock()
