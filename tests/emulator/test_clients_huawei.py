"""Huawei clients other than imagebak's own calls, against a served emulator.

- a raw ``requests`` client signing with the older ``SDK-HMAC-SHA256 Credential=AK/date/region/service/
  sdk_request`` form, written after Huawei's older official Python SDK (huaweicloud/huaweicloud-sdk-python,
  ``openstack/aksksession.py``, class ``AkSksignature``): create -> ShowJobProgress -> copy -> delete;
- huaweicloudsdkims operations imagebak does not use: ``show_job_progress`` (the successor of the
  deprecated ``show_job``), ``glance_list_images`` and ``glance_show_image``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
import requests
from _worlds import instance, world
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkims.v2 import (
    CreateImageRequest,
    CreateImageRequestBody,
    GlanceListImagesRequest,
    GlanceShowImageRequest,
    ImsClient,
    ShowJobProgressRequest,
)

from imagebak.emulator.server import EmulatorHandle

pytestmark = pytest.mark.filterwarnings("ignore:Method 'glance_.*' of ImsClient is deprecated")

AK, SK = "AKHWOLDFORM", "hw-old-secret"
NORTH4, EAST3 = "cn-north-4", "cn-east-3"
PROJECTS = {NORTH4: "project-north4", EAST3: "project-east3"}
FIXTURE = world(
    "huawei",
    ("hw-clients", AK, SK),
    PROJECTS,
    [instance("web", NORTH4, ("vol-web-a", "vda", 40))],
    {"image": 100, "copy": 200},
)


class OldFormSigner:
    """AkSksignature of huaweicloud-sdk-python: Host and X-Sdk-Date signed, a scope-derived key."""

    def __init__(self, ak: str, sk: str, region: str) -> None:
        self.ak, self.sk, self.region = ak, sk, region

    def sign(self, method: str, url: str, headers: dict[str, str], body: str, service: str) -> str:
        parts = urlsplit(url)
        uri = quote(parts.path)
        uri = uri if uri.endswith("/") else uri + "/"
        query = sorted(p.split("=", 1) for p in parts.query.split("&") if p)
        canonical_query = urlencode(query).replace("+", "%20")
        canonical_headers = f"host:{headers['Host'].strip()}\nx-sdk-date:{headers['X-Sdk-Date'].strip()}\n"
        payload = hashlib.sha256(body.encode()).hexdigest()
        canonical = "\n".join([method.upper(), uri, canonical_query, canonical_headers, "host;x-sdk-date", payload])
        stamp = headers["X-Sdk-Date"]
        scope = "/".join([stamp.split("T")[0], self.region, service, "sdk_request"])
        to_sign = "\n".join(["SDK-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("SDK" + self.sk).encode()
        for part in (stamp[:8], self.region, service, "sdk_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"SDK-HMAC-SHA256 Credential={self.ak}/{scope}, SignedHeaders=host;x-sdk-date, Signature={signature}"


def old_call(
    served: EmulatorHandle, method: str, path: str, body: Any = None, *, region: str = NORTH4, secret: str = SK
) -> requests.Response:
    """One request as the old SDK's ASKSession sends it: Host, X-Sdk-Date, X-Project-Id, JSON content type."""
    url = f"{served.endpoint}{path}"
    data = json.dumps(body) if body is not None else ""
    headers = {
        "Host": served.host_port,
        "X-Sdk-Date": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
        "Content-Type": "application/json",
        "X-Project-Id": PROJECTS[region],
    }
    headers["Authorization"] = OldFormSigner(AK, secret, region).sign(method, url, headers, data, "ims")
    return requests.request(method, url, data=data or None, headers=headers, timeout=5)


def old_job(served: EmulatorHandle, job_id: str, region: str = NORTH4) -> dict[str, Any]:
    response = old_call(served, "GET", f"/v1/cloudimages/job/{job_id}", region=region)
    assert response.status_code == 200, response.text
    return response.json()


def test_old_signing_form_create_poll_copy_delete(served: EmulatorHandle) -> None:
    created = old_call(served, "POST", "/v2/cloudimages/action", {"name": "old-form", "instance_id": "web"})
    assert created.status_code == 200, created.text
    job = old_job(served, created.json()["job_id"])
    assert job["status"] == "INIT" and job["job_type"] == "imsCreateImageByInstance"
    served.clock.advance(100)
    job = old_job(served, created.json()["job_id"])
    assert job["status"] == "SUCCESS" and job["entities"]["process_percent"] == 1.0
    image_id = job["entities"]["image_id"]

    copy_body = {"name": "old-form-copy", "region": EAST3, "project_name": EAST3}
    copied = old_call(served, "POST", f"/v1/cloudimages/{image_id}/cross_region_copy", copy_body)
    assert copied.status_code == 200, copied.text
    served.clock.advance(200)
    copy_job = old_job(served, copied.json()["job_id"])
    assert copy_job["status"] == "SUCCESS"
    copy_id = copy_job["entities"]["image_id"]
    assert served.model.get_image("hw-clients", EAST3, copy_id).status == "available"

    assert old_call(served, "DELETE", f"/v2/images/{copy_id}", region=EAST3).status_code == 204
    assert old_call(served, "DELETE", f"/v2/images/{image_id}").status_code == 204
    assert not served.model.list_images("hw-clients", NORTH4) and not served.model.list_images("hw-clients", EAST3)
    assert served.counters.get("huawei", "ShowJobProgress") == 3


def test_old_signing_form_refuses_a_wrong_secret_and_a_foreign_scope_date(served: EmulatorHandle) -> None:
    wrong = old_call(served, "GET", "/v2/images", secret="not-the-secret")
    assert (wrong.status_code, wrong.json()["error_code"]) == (401, "APIGW.0301")
    assert "verify aksk signature fail" in wrong.json()["error_msg"]

    headers = {"Host": served.host_port, "X-Sdk-Date": "20240101T000000Z", "X-Project-Id": PROJECTS[NORTH4]}
    headers["Authorization"] = OldFormSigner(AK, SK, NORTH4).sign(
        "GET", f"{served.endpoint}/v2/images", headers, "", "ims"
    )
    headers["X-Sdk-Date"] = "20240102T000000Z"  # another day than the credential scope's
    stale = requests.get(f"{served.endpoint}/v2/images", headers=headers, timeout=5)
    assert stale.status_code == 401
    entries = served.request_log.entries()
    assert [(e["action"], e["status"]) for e in entries] == [("GlanceListImages", 401), ("GlanceListImages", 401)]
    assert entries[0]["reason"] == "auth_failed/bad_signature: Incorrect IAM authentication information: " + (
        "verify aksk signature fail"
    )


@pytest.fixture
def ims(served: EmulatorHandle) -> ImsClient:
    config = HttpConfig.get_default_config()
    config.timeout = (3, 10)
    return (
        ImsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(AK, SK, PROJECTS[NORTH4]))
        .with_endpoint(served.endpoint)
        .build()
    )


def test_sdk_show_job_progress_and_glance_listing(served: EmulatorHandle, ims: ImsClient) -> None:
    body = CreateImageRequestBody(name="sdk-progress", instance_id="web")
    job_id = ims.create_image(CreateImageRequest(body=body)).job_id
    served.clock.advance(50)
    progress = ims.show_job_progress(ShowJobProgressRequest(job_id=job_id))
    assert progress.status == "RUNNING" and progress.entities.process_percent == 0.5
    image_id = progress.entities.image_id
    served.clock.advance(50)
    assert ims.show_job_progress(ShowJobProgressRequest(job_id=job_id)).status == "SUCCESS"

    newer = ims.create_image(CreateImageRequest(body=CreateImageRequestBody(name="sdk-newer", instance_id="web")))
    newer_id = ims.show_job_progress(ShowJobProgressRequest(job_id=newer.job_id)).entities.image_id
    listed = ims.glance_list_images(GlanceListImagesRequest(imagetype="private", limit=1))
    assert [i.id for i in listed.images] == [newer_id] and listed.schema == "/v2/schemas/images"
    assert listed.next == f"/v2/images?marker={newer_id}&limit=1"
    rest = ims.glance_list_images(GlanceListImagesRequest(imagetype="private", limit=1, marker=newer_id))
    assert [i.id for i in rest.images] == [image_id] and rest.next is None
    shown = ims.glance_show_image(GlanceShowImageRequest(image_id=image_id))
    assert (shown.id, shown.name, shown.status) == (image_id, "sdk-progress", "active")

    with pytest.raises(ClientRequestException) as missing:
        ims.show_job_progress(ShowJobProgressRequest(job_id="0" * 32))
    assert (missing.value.status_code, missing.value.error_code) == (404, "IMS.0404")  # IMG.0023: a server fault
