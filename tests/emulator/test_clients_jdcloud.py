"""JD Cloud clients other than imagebak's own calls, against a served emulator.

- raw ``requests`` calls signed with the SDK's own ``jdcloud_sdk.core.signer.Signer`` (what any client
  of JD's OpenAPI does): create -> poll -> copy -> delete, image attributes, sharing, constraints,
  unknown paths in JD's error shape;
- the SDK's request classes imagebak does not use (``DescribeImageConstraints[Batch]``,
  ``ModifyImageAttribute``, ``ShareImage``/``UnShareImage``, ``DescribeImageMembers``);
- JD's CLI ``jdc`` (jdcloud_cli on PyPI) when ``JDC_PYTHONPATH`` names an installation of it: jdcloud_cli
  pins jdcloud_sdk==1.6.180, which conflicts with imagebak's jdcloud-sdk>=1.6.354, so it cannot be a dev
  dependency (install it with ``pip install --no-deps --target DIR jdcloud_cli jinja2 argcomplete``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from _worlds import instance, world
from jdcloud_sdk.core.config import Config
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import ERROR, Logger
from jdcloud_sdk.core.signer import Signer
from jdcloud_sdk.services.vm.apis.DescribeImageConstraintsBatchRequest import (
    DescribeImageConstraintsBatchParameters,
    DescribeImageConstraintsBatchRequest,
)
from jdcloud_sdk.services.vm.apis.DescribeImageConstraintsRequest import (
    DescribeImageConstraintsParameters,
    DescribeImageConstraintsRequest,
)
from jdcloud_sdk.services.vm.apis.DescribeImageMembersRequest import (
    DescribeImageMembersParameters,
    DescribeImageMembersRequest,
)
from jdcloud_sdk.services.vm.apis.ModifyImageAttributeRequest import (
    ModifyImageAttributeParameters,
    ModifyImageAttributeRequest,
)
from jdcloud_sdk.services.vm.apis.ShareImageRequest import ShareImageParameters, ShareImageRequest
from jdcloud_sdk.services.vm.apis.UnShareImageRequest import UnShareImageParameters, UnShareImageRequest
from jdcloud_sdk.services.vm.client.VmClient import VmClient

from imagebak.emulator.server import EmulatorHandle

REGION, DEST = "cn-north-1", "cn-east-2"
ACCOUNT, AK, SK = "jd-clients", "AKJDCLIENTS", "jd-clients-secret"
FIXTURE = world(
    "jdcloud",
    (ACCOUNT, AK, SK),
    [REGION, DEST],
    [instance("i-jdweb", REGION, ("vol-jd-sys", "vda", 40), ("vol-jd-data", "vdb", 50))],
    {"image": 100, "copy": 200},
)


def jd(
    served: EmulatorHandle, method: str, path: str, body: Any = None, *, secret: str = SK, region: str = REGION
) -> dict[str, Any]:
    """A raw OpenAPI call: the URL, headers and body a JD client sends, signed by the SDK's Signer."""
    url = f"http://{served.host_port}/v1{path}"
    data = json.dumps(body) if body is not None else ""
    headers = {"Content-Type": "application/json", "User-Agent": "raw-jd-client/1.0"}
    Signer(Logger(ERROR)).sign(
        method=method, service="vm", region=region, uri=url, headers=headers, data=data,
        credential=Credential(AK, secret), security_token="",
    )  # fmt: skip
    response = requests.request(method, url, data=data or None, headers=headers, timeout=5)
    payload: dict[str, Any] = response.json()
    assert payload["requestId"] == response.headers["x-jdcloud-request-id"]
    if "error" in payload:
        assert payload["error"]["code"] == response.status_code
    return payload


def image_status(served: EmulatorHandle, image_id: str, region: str = REGION) -> str:
    status: str = jd(served, "GET", f"/regions/{region}/images/{image_id}", region=region)["result"]["image"]["status"]
    return status


def test_raw_signed_create_poll_copy_delete(served: EmulatorHandle) -> None:
    created = jd(
        served, "POST", f"/regions/{REGION}/instances/i-jdweb:createImage", {"name": "raw-img", "description": ""}
    )
    image_id = created["result"]["imageId"]
    assert image_status(served, image_id) == "pending"
    served.clock.advance(100)
    assert image_status(served, image_id) == "ready"

    body = {"sourceImageIds": [image_id], "destinationRegion": DEST, "name": "raw-copy"}
    copies = jd(served, "POST", f"/regions/{REGION}/images:copyImages", body)["result"]["copyImages"]
    copy_id = copies[0]["destinationImageId"]
    assert image_status(served, copy_id, DEST) == "copying"
    served.clock.advance(200)
    assert image_status(served, copy_id, DEST) == "ready"

    assert "error" not in jd(served, "DELETE", f"/regions/{DEST}/images/{copy_id}", region=DEST)
    assert "error" not in jd(served, "DELETE", f"/regions/{REGION}/images/{image_id}?deleteSnapshot=true")
    assert not served.model.list_images(ACCOUNT, REGION) and not served.model.list_images(ACCOUNT, DEST)


def test_raw_signed_attributes_sharing_and_constraints(served: EmulatorHandle) -> None:
    image_id = jd(served, "POST", f"/regions/{REGION}/instances/i-jdweb:createImage", {"name": "raw-share"})["result"][
        "imageId"
    ]
    base = f"/regions/{REGION}/images/{image_id}"
    jd(served, "POST", f"{base}:modifyImageAttribute", {"name": "renamed", "description": None})
    assert served.model.get_image(ACCOUNT, REGION, image_id).name == "renamed"
    bad = jd(served, "POST", f"{base}:modifyImageAttribute", {"name": "x"})
    assert bad["error"]["status"] == "INVALID_ARGUMENT"

    jd(served, "POST", f"{base}:share", {"pins": ["pin-a", "pin-b"]})
    assert sorted(jd(served, "GET", f"{base}/members")["result"]["pins"]) == ["pin-a", "pin-b"]
    self_share = jd(served, "POST", f"{base}:share", {"pins": [ACCOUNT]})
    assert self_share["error"]["status"] == "INVALID_ARGUMENT"
    too_many = jd(served, "POST", f"{base}:share", {"pins": [f"pin-{n}" for n in range(19)]})
    assert too_many["error"]["status"] == "QUOTA_EXCEEDED"
    shared = jd(served, "DELETE", base)
    assert (shared["error"]["code"], shared["error"]["status"]) == (400, "FAILED_PRECONDITION")
    jd(served, "POST", f"{base}:unshare", {"pins": ["pin-a", "pin-b"]})
    assert jd(served, "GET", f"{base}/members")["result"]["pins"] == []

    constraints = jd(served, "GET", f"{base}/constraints")["result"]["imageConstraints"]
    assert constraints == {"imageId": image_id, "imageInstanceTypeConstraint": None}
    batch = jd(served, "GET", f"/regions/{REGION}/imageConstraints?ids.1={image_id}")["result"]
    assert batch == {"imageConstraints": []}
    assert "error" not in jd(served, "DELETE", base)


def test_unknown_paths_and_bad_signatures_answer_in_jd_shape(served: EmulatorHandle) -> None:
    unknown = jd(served, "GET", f"/regions/{REGION}/images/img-1/nothing")
    assert (unknown["error"]["code"], unknown["error"]["status"]) == (404, "NOT_FOUND")
    outside = jd(served, "GET", "/describeRegions")  # JD-signed, not under /v1/regions/
    assert outside["error"]["status"] == "NOT_FOUND"
    wrong = jd(served, "GET", f"/regions/{REGION}/images?imageSource=private", secret="nope")
    assert (wrong["error"]["code"], wrong["error"]["status"]) == (401, "UNAUTHENTICATED")
    log = served.request_log.entries()
    assert [(e["vendor"], e["action"], e["status"]) for e in log] == [
        ("jdcloud", "unknown", 404),
        ("jdcloud", "unknown", 404),
        ("jdcloud", "describeImages", 401),
    ]
    assert log[2]["reason"] == "auth_failed/bad_signature: signature does not match"


def test_sdk_request_classes_for_constraints_attributes_and_members(served: EmulatorHandle) -> None:
    vm = VmClient(Credential(AK, SK), Config(served.host_port, scheme="http", timeout=5), logger=Logger(ERROR))
    image_id = jd(served, "POST", f"/regions/{REGION}/instances/i-jdweb:createImage", {"name": "sdk-attr"})["result"][
        "imageId"
    ]
    modify = ModifyImageAttributeParameters(REGION, image_id)
    modify.setDescription("described")
    assert vm.send(ModifyImageAttributeRequest(modify)).error is None
    assert served.model.get_image(ACCOUNT, REGION, image_id).description == "described"

    share = ShareImageParameters(REGION, image_id)
    share.setPins(["pin-sdk"])
    assert vm.send(ShareImageRequest(share)).error is None
    members = vm.send(DescribeImageMembersRequest(DescribeImageMembersParameters(REGION, image_id)))
    assert members.result == {"pins": ["pin-sdk"]}
    unshare = UnShareImageParameters(REGION, image_id)
    unshare.setPins(["pin-sdk"])
    assert vm.send(UnShareImageRequest(unshare)).error is None

    single = vm.send(DescribeImageConstraintsRequest(DescribeImageConstraintsParameters(REGION, image_id)))
    assert single.result["imageConstraints"]["imageId"] == image_id
    batch_params = DescribeImageConstraintsBatchParameters(REGION)
    batch_params.setIds([image_id])
    assert vm.send(DescribeImageConstraintsBatchRequest(batch_params)).result == {"imageConstraints": []}


@pytest.mark.skipif(not os.environ.get("JDC_PYTHONPATH"), reason="set JDC_PYTHONPATH to a jdcloud_cli install")
def test_jdc_cli_create_poll_copy_delete(served: EmulatorHandle, tmp_path: Path) -> None:
    """JD's own CLI, configured the documented way (~/.jdc/config profile with endpoint and scheme)."""
    (tmp_path / ".jdc").mkdir()
    (tmp_path / ".jdc" / "config").write_text(
        f"[emulator]\naccess_key = {AK}\nsecret_key = {SK}\nregion_id = {REGION}\n"
        f"endpoint = {served.host_port}\nscheme = http\ntimeout = 10\n"
    )
    (tmp_path / ".jdc" / "current").write_text("emulator")
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": os.environ["JDC_PYTHONPATH"]}

    def jdc(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", "from jdcloud_cli.jdc import main; main()", *args],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    image_id = jdc("vm", "create-image", "--instance-id", "i-jdweb", "--name", "cli-img", "--description", "")[
        "result"
    ]["imageId"]
    served.clock.advance(100)
    assert jdc("vm", "describe-image", "--image-id", image_id)["result"]["image"]["status"] == "ready"
    copied = jdc(
        "vm", "copy-images", "--source-image-ids", json.dumps([image_id]), "--destination-region", DEST
    )["result"]["copyImages"][0]["destinationImageId"]  # fmt: skip
    served.clock.advance(200)
    assert (
        jdc("vm", "describe-image", "--region-id", DEST, "--image-id", copied)["result"]["image"]["status"] == "ready"
    )
    assert jdc("vm", "delete-image", "--region-id", DEST, "--image-id", copied)["error"] is None
    assert jdc("vm", "delete-image", "--image-id", image_id)["error"] is None
