"""A large upload on the S3 backend, from the page: the browser posts the presigned form
straight to the bucket (moto's server on loopback: another origin than the page, as S3 is
deployed), which the page's Content-Security-Policy must name and the form must satisfy
(its fields first, the file last, no Authorization header); the file is then converted
and listed like any upload."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from playwright.sync_api import Page, Response, expect

from smart_stream.changes import ObjectChanged
from tests.aws_fixtures import create_bucket, create_catalog_table
from tests.browser.conftest import PageServer, library_row, upload_item, wav_bytes
from tests.conftest import AWS_ENV


@pytest.fixture(scope="module")
def server_env(moto_endpoint: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:12]
    bucket, table = f"page-audio-{suffix}", f"page-cat-{suffix}"
    credentials: dict[str, Any] = {
        "endpoint_url": moto_endpoint,
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }
    create_bucket(boto3.client("s3", **credentials), bucket)
    create_catalog_table(boto3.client("dynamodb", **credentials), table)
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "S3_AUDIO_BUCKET": bucket,
        "CATALOG_TABLE": table,
        "TTS_ENGINE": "local",
    }


def test_a_large_upload_goes_from_the_browser_straight_to_the_bucket(
    signed_in: Page, server: PageServer, moto_endpoint: str
):
    page = signed_in
    policy = page.evaluate("() => fetch('/').then((r) => r.headers.get('content-security-policy'))")
    connect = next(d for d in policy.split("; ") if d.startswith("connect-src"))
    assert moto_endpoint in connect.split(), policy

    forms: list[Response] = []
    page.on("response", lambda r: forms.append(r) if r.url.endswith("/upload-url") else None)
    with page.expect_request(lambda r: r.url.startswith(moto_endpoint)) as sent:
        page.get_by_label("Upload audio").set_input_files(
            [{"name": "long-night.wav", "mimeType": "audio/wav", "buffer": wav_bytes(26)}]
        )
    request = sent.value
    assert request.method == "POST"
    assert "authorization" not in {name.lower() for name in request.headers}
    answered = request.response()
    assert answered is not None and answered.status in (200, 201, 204), answered
    key = forms[0].json()["fields"]["key"]

    # moto sends no bucket events: deliver the one S3 would send through EventBridge.
    root = server.app.state.services
    root.changes.publish(ObjectChanged("ObjectCreated", root.storage.head(key)))

    item = upload_item(page, "#upload-list", "long-night.wav")
    expect(item.locator(".badge")).to_have_text("ready")
    expect(library_row(page, "long-night.mp3")).to_contain_text("0:26")
    assert server.metadata("long-night.mp3").json()["status"] == "ready"
