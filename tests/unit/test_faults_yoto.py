"""Yoto failing as ``adapters/yoto_http.py`` documents it is met: each call is tried
``ATTEMPTS`` times, with a backoff pause between attempts, on time-outs, unreachable hosts
and ``RETRY_STATUSES``; then a 502, nothing changed.

``tests/unit/test_yoto.py`` already has: a card push failing ``ATTEMPTS`` times with each of
500, 502, 503, 504 and 429 (502, nothing changed, longer pauses each time), a 429 once then
success, a slow Yoto timing out each attempt, an unreachable Yoto; and
``tests/integration/test_yoto_flow.py`` the same over HTTP with a card removal failing.
What is here is what those leave out: a 5xx or a time-out once then success (one card, not
two), a card removal failing once, and the sign-in's own calls (the token refresh before a
push, the authorization code's exchange, the device code's poll) failing once or for good.

The pauses are recorded, not slept (the services' ``sleep``); the one time-out waits out
the client's 0.2 s time-out against a fake that answers after a second.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from smart_stream.adapters.yoto_http import ATTEMPTS, backoff
from smart_stream.bootstrap import services
from smart_stream.domain.errors import YotoFailedError
from smart_stream.services.yoto_signin import REFRESH_MARGIN_SECONDS, TOKEN_KEY
from tests.unit import test_yoto as yoto
from tests.unit.test_yoto import (
    assert_error,
    callback,
    get_queue,
    login_status,
    make_queue,
    push_card,
    signed_in,
)

# The fixtures of tests/unit/test_yoto.py (the fake Yoto, the local backend, three songs,
# the recorded pauses), for this module.
_fake_yoto_server = yoto._fake_yoto_server
fake_yoto = yoto.fake_yoto
sleeps = yoto.sleeps
wall_clock = yoto.wall_clock
rebuild = yoto.rebuild
env = yoto.env
fake = yoto.fake
songs = yoto.songs


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_yoto_failing_once_is_retried_and_makes_one_card(env, fake, songs, sleeps, status):
    make_queue()
    signed_in(fake)
    fake.fail_next(1, status, path="/content")
    created, queue = push_card("bedtime")
    assert created is True and list(fake.cards) == [queue.yoto_card_id]
    assert [r.status for r in fake.calls("POST", "/content")] == [status, 200]
    assert sleeps == [backoff(1)]


def test_a_yoto_time_out_once_is_retried_and_makes_one_card(
    env, fake, songs, sleeps, monkeypatch, rebuild
):
    make_queue()
    signed_in(fake)
    monkeypatch.setenv("YOTO_TIMEOUT_SECONDS", "0.2")
    rebuild()
    fake.slow_next(1, seconds=5.0, path="/content")  # far past the 0.2 s time-out
    created, queue = push_card("bedtime")
    assert created is True and list(fake.cards) == [queue.yoto_card_id]
    assert len(fake.calls("POST", "/content")) == 2
    assert sleeps == [backoff(1)]


def test_removing_a_card_failing_once_is_retried(env, fake, songs, sleeps):
    make_queue()
    signed_in(fake)
    _, queue = push_card("bedtime")
    fake.fail_next(1, 503, path="/content/")
    services().yoto_cards.remove("bedtime")
    assert fake.cards == {} and get_queue("bedtime").yoto_card_id is None
    assert [r.status for r in fake.calls("DELETE", "/content/")] == [503, 200]
    assert queue.yoto_card_id in fake.deleted_cards and sleeps == [backoff(1)]


def test_removing_a_card_failing_for_good_is_502_and_keeps_it(env, fake, songs, sleeps):
    make_queue()
    signed_in(fake)
    _, queue = push_card("bedtime")
    fake.fail_next(ATTEMPTS, 500, path="/content/")
    with pytest.raises(YotoFailedError) as caught:
        services().yoto_cards.remove("bedtime")
    assert "nothing was changed" in assert_error(caught, 502, "yoto_failed")
    assert len(fake.calls("DELETE", "/content/")) == ATTEMPTS
    assert list(fake.cards) == [queue.yoto_card_id]
    assert get_queue("bedtime").yoto_card_id == queue.yoto_card_id


def expiring_sign_in(fake) -> None:
    """Signed in with a token that is refreshed before the next call."""
    fake.token_lifetime = REFRESH_MARGIN_SECONDS - 30
    signed_in(fake)


def test_a_token_refresh_failing_once_is_retried(env, fake, songs, sleeps):
    make_queue()
    expiring_sign_in(fake)
    fake.fail_next(1, 503, path="/oauth/token")
    created, _ = push_card("bedtime")
    assert created is True and len(fake.cards) == 1
    refreshes = [r.status for r in fake.calls("POST", "/oauth/token")][1:]
    assert refreshes == [503, 200] and sleeps == [backoff(1)]


def test_a_token_refresh_failing_for_good_is_502_and_keeps_the_sign_in(env, fake, songs, sleeps):
    """Yoto down is not Yoto saying no: the parent stays signed in, and the next push,
    Yoto back, refreshes and works."""
    before = make_queue()
    expiring_sign_in(fake)
    tokens = services().catalog.get_value(TOKEN_KEY)
    fake.fail_next(ATTEMPTS, 500, path="/oauth/token")
    with pytest.raises(YotoFailedError) as caught:
        push_card("bedtime")
    assert_error(caught, 502, "yoto_failed")
    assert fake.calls("POST", "/content") == [] and fake.cards == {}
    assert get_queue("bedtime") == before
    assert services().catalog.get_value(TOKEN_KEY) == tokens
    assert login_status()["signed_in"] is True
    created, _ = push_card("bedtime")
    assert created is True


def test_the_code_exchange_failing_once_is_retried_and_signs_in(env, fake, sleeps):
    back = fake.consent(services().yoto_signin.authorize(yoto.BASE))
    fake.fail_next(1, 502, path="/oauth/token")
    assert callback(back) == "/#yoto=signed-in"
    assert login_status() == {"signed_in": True, "pending": False}
    assert [r.status for r in fake.calls("POST", "/oauth/token")] == [502, 200]
    assert sleeps == [backoff(1)]


def test_the_code_exchange_failing_for_good_says_so_and_stores_nothing(env, fake, sleeps):
    back = fake.consent(services().yoto_signin.authorize(yoto.BASE))
    fake.fail_next(ATTEMPTS, 503, path="/oauth/token")
    assert callback(back) == "/#yoto=error&reason=yoto_unavailable"
    assert len(fake.calls("POST", "/oauth/token")) == ATTEMPTS
    assert services().catalog.get_value(TOKEN_KEY) is None
    assert login_status()["signed_in"] is False
    # The code was spent with its state: signing in again starts afresh, and works.
    again = fake.consent(services().yoto_signin.authorize(yoto.BASE))
    assert parse_qs(urlsplit(again).query)["state"] != parse_qs(urlsplit(back).query)["state"]
    assert callback(again) == "/#yoto=signed-in"


def test_a_device_code_poll_failing_once_is_retried(env, fake, sleeps):
    services().yoto_signin.start_login()
    fake.approve()
    fake.fail_next(1, 504, path="/oauth/token")
    assert services().yoto_signin.poll_login() is True
    assert [r.status for r in fake.calls("POST", "/oauth/token")] == [504, 200]
    assert sleeps == [backoff(1)]
