"""Who may call what: the management token (401) and the credential a device URL carries
(403), and where the local secrets live."""

from __future__ import annotations

import hmac
import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smart_stream.adapters.local.secrets import API_TOKEN_FILE, SIGNING_SECRET_FILE
from smart_stream.bootstrap import install, services
from smart_stream.domain.errors import ForbiddenError, UnauthorizedError
from smart_stream.services.access import Access
from tests.conftest import TOKEN

BEARER = {"authorization": f"Bearer {TOKEN}"}


def access() -> Access:
    """Who-may-call-what of the services installed now (built from the test's env)."""
    return services().access


def restart() -> None:
    """What a new process does: everything built afresh from the environment."""
    install(None)


def credential(name: str = "story.mp3", version: int = 1, kind: str = "audio") -> str:
    return access().device_credential(kind, name, version)


# --- device credentials ---------------------------------------------------------------------


def test_the_right_credential_opens_the_device_route():
    access().require_device({}, credential(), "audio", "story.mp3", 1)


def test_credentials_are_stable_url_safe_and_differ_per_item():
    first = credential()
    assert credential() == first, "the same URL every time it is handed out"
    assert first.replace("-", "").replace("_", "").isalnum()
    others = {
        credential("other.mp3"),
        credential(version=2),
        credential(kind="stream"),
        credential("story.MP3"),
    }
    assert first not in others and len(others) == 4


def _tampered(value: str) -> list[str]:
    flipped = [
        value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :] for i in range(len(value))
    ]
    return [*flipped, value[:-1], value + "A", value.upper(), value[::-1], "", " " + value]


def test_a_tampered_credential_is_403():
    good = credential()
    for bad in _tampered(good):
        with pytest.raises(ForbiddenError):
            access().require_device({}, bad, "audio", "story.mp3", 1)


@pytest.mark.parametrize(
    ("name", "version", "kind"),
    [("other.mp3", 1, "audio"), ("story.mp3", 2, "audio"), ("story.mp3", 1, "stream")],
)
def test_a_credential_for_another_item_or_version_is_403(name, version, kind):
    """A URL for one file does not open another; a revoked (older) version opens nothing."""
    with pytest.raises(ForbiddenError):
        access().require_device({}, credential(name, version, kind), "audio", "story.mp3", 1)


def test_revoking_by_bumping_the_version():
    old = credential(version=1)
    new = credential(version=2)
    access().require_device({}, new, "audio", "story.mp3", 2)
    with pytest.raises(ForbiddenError):
        access().require_device({}, old, "audio", "story.mp3", 2)


@pytest.mark.parametrize(
    "value", ["ÿÿÿÿ", "é" * 22, "\x00" * 22, "🐻", "a" * 10_000, "%00", "sig=abc"]
)
def test_odd_credentials_are_403_not_a_crash(value):
    """Constant-time comparison of str with non-ASCII raises TypeError unless bytes are
    compared; whatever a URL carries, the answer is a 403."""
    with pytest.raises(ForbiddenError):
        access().require_device({}, value, "audio", "story.mp3", 1)


@given(st.text(max_size=40))
def test_no_guessed_credential_opens_the_route(value):
    if value == credential():
        return
    with pytest.raises(ForbiddenError):
        access().require_device({}, value, "audio", "story.mp3", 1)


def test_the_bearer_token_also_opens_device_routes():
    access().require_device(BEARER, None, "audio", "story.mp3", 1)
    access().require_device(BEARER, "", "audio", "story.mp3", 1)
    access().require_device(BEARER, "tampered", "audio", "story.mp3", 1)


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}, {"x": "y"}],
)
def test_no_credential_and_no_good_token_is_403_on_device_routes(headers):
    """Device routes answer 403 (not 401): a player cannot log in."""
    with pytest.raises(ForbiddenError):
        access().require_device(headers, None, "audio", "story.mp3", 1)


def test_comparisons_are_constant_time(monkeypatch):
    """Both the device credential and the management token go through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    access().require_device({}, credential(), "audio", "story.mp3", 1)
    assert calls and calls[-1][0] == credential().encode()
    calls.clear()
    access().require_management(BEARER)
    assert calls and calls[-1] == (TOKEN.encode(), TOKEN.encode())
    calls.clear()
    with pytest.raises(UnauthorizedError):
        access().require_management({"authorization": "Bearer guess"})
    assert calls, "a wrong token is compared in constant time too"


# --- management token -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer   {TOKEN}  "]
)
def test_the_management_token_is_accepted(value):
    access().require_management({"authorization": value})
    assert access().has_valid_bearer({"authorization": value})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": "Bearer"},
        {"authorization": "Bearer "},
        {"authorization": TOKEN},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": f"Token {TOKEN}"},
        {"authorization": f"Bearer {TOKEN[:-1]}"},
        {"authorization": f"Bearer {TOKEN}x"},
        {"authorization": f"Bearer {TOKEN.upper()}"},
        {"authorization": "Bearer tökén"},
        {"authorization": f"Bearer {credential()}"},  # a device credential is not the token
        {"x-api-key": TOKEN},
    ],
)
def test_management_routes_refuse_anything_else_with_401(headers):
    with pytest.raises(UnauthorizedError) as caught:
        access().require_management(headers)
    assert "Bearer" in caught.value.message


# --- local secrets --------------------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_generated_token_lives_in_data_dir_owner_only_and_survives_restarts(
    monkeypatch, local_env
):
    """Given no API_TOKEN, when the token is first needed, then one is made in DATA_DIR
    (never among the audio), readable by the owner only, and the same after a restart."""
    monkeypatch.delenv("API_TOKEN")
    restart()

    token = services().secrets.api_token()

    path = local_env.data_dir / API_TOKEN_FILE
    assert path.read_text().strip() == token
    assert len(token) >= 32
    assert _mode(path) == 0o600
    assert not local_env.audio_dir.exists() or not any(local_env.audio_dir.iterdir())
    access().require_management({"authorization": f"Bearer {token}"})
    with pytest.raises(UnauthorizedError):
        access().require_management(BEARER)

    restart()
    assert services().secrets.api_token() == token


def test_the_signing_secret_lives_in_data_dir_and_device_urls_survive_restarts(local_env):
    before = credential()

    path = local_env.data_dir / SIGNING_SECRET_FILE
    assert path.is_file()
    assert _mode(path) == 0o600
    assert not local_env.audio_dir.exists() or not any(local_env.audio_dir.iterdir())
    assert len(path.read_text().strip()) >= 32

    restart()
    assert credential() == before, "a card's URL must keep working after a restart"
    access().require_device({}, before, "audio", "story.mp3", 1)


def test_a_new_signing_secret_revokes_every_url(local_env, monkeypatch, tmp_path):
    before = credential()
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "another-state"))
    restart()
    assert credential() != before
    with pytest.raises(ForbiddenError):
        access().require_device({}, before, "audio", "story.mp3", 1)


def test_secrets_are_not_in_the_audio_dir_even_when_it_is_the_working_dir(local_env, monkeypatch):
    local_env.audio_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(local_env.audio_dir)
    monkeypatch.delenv("API_TOKEN")
    restart()
    services().secrets.api_token()
    credential()
    assert sorted(os.listdir(local_env.audio_dir)) == []
    assert {API_TOKEN_FILE, SIGNING_SECRET_FILE} <= set(os.listdir(local_env.data_dir))
