"""The operator's sequential script, as the yardstick imagebak's speed-up is measured against.

The seed (``/work/shared/seeds/004_*``: "image operations: create -> check status -> copy") walks the
instances one at a time through the real Aliyun SDK: CreateImage, DescribeImages every 300 s until
Available, CopyImage. This is that loop, against the emulator, with one addition the comparison
needs: it also polls the copy every 300 s until Available (the seed stops once the copy is
submitted, so it never knows whether its DR copy exists).

Two deliberate deviations, both in the baseline's favour:

* DescribeImages is sent with ``Status=Creating,Available,...``. The seed sends no Status, so Aliyun
  (and the emulator) lists only Available images; ``['Image'][0]`` then raises while the image is
  being created, and the seed's bare ``except: pass`` retries at once without sleeping — a
  busy loop of thousands of calls per image. Polling every 300 s is what the seed meant.
* The 300-second sleeps are not slept: the emulator's clock is moved forward by 300 simulated
  seconds instead (``POST /_emulator/clock/advance``). The loop does nothing while it sleeps, so this
  changes no figure, and 100 instances x ~40 simulated minutes need not take an hour at x100.
  Everything else (the SDK calls themselves) runs in real time at the emulator's time scale.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import RpcRequest
from aliyunsdkecs.request.v20140526.CopyImageRequest import CopyImageRequest
from aliyunsdkecs.request.v20140526.CreateImageRequest import CreateImageRequest
from aliyunsdkecs.request.v20140526.DescribeImagesRequest import DescribeImagesRequest
from harness import VENDORS, World

SEED_POLL_SECONDS = 300.0  # the seed's time.sleep(300)
ALL_STATUSES = "Creating,Available,UnAvailable,CreateFailed"


@dataclass
class BaselineResult:
    instances: int
    simulated_seconds: float  # from the first CreateImage to the last copy seen Available
    real_seconds: float  # what this process spent (the sleeps skipped)
    calls: int
    by_action: dict[str, int]


class SeedScript:
    """The seed's ``ecshelper`` loop for one source and one destination region of one Aliyun account."""

    def __init__(self, w: World, dest_region: str) -> None:
        setup = VENDORS["aliyun"]
        key_id, secret = w.credentials("aliyun")
        self.world = w
        self.source, self.dest = setup.source, dest_region
        self.clients: dict[str, AcsClient] = {}
        for region in (self.source, self.dest):  # one client per region, as the Aliyun adapter does
            client = AcsClient(key_id, secret, region, auto_retry=False)
            client.add_endpoint(region, "Ecs", w.emu.host_port)  # the emulator instead of ecs.aliyuncs.com
            self.clients[region] = client

    def _do(self, region: str, request: RpcRequest) -> dict:
        request.set_protocol_type("http")
        request.set_accept_format("json")
        return json.loads(self.clients[region].do_action_with_exception(request))

    def _stamp(self) -> str:
        return self.world.emu.now().strftime("%Y-%m-%d-%H:%M")  # the seed's name suffix

    def _sleep(self, seconds: float) -> None:
        self.world.emu.advance_clock(seconds)

    def _wait_available(self, region: str, image_id: str) -> None:
        """The seed's ``while flag`` loop: describe, and if not Available sleep 300 s."""
        while True:
            request = DescribeImagesRequest()
            request.add_query_param("RegionId", region)
            request.add_query_param("ImageId", image_id)
            request.add_query_param("Status", ALL_STATUSES)
            if self._do(region, request)["Images"]["Image"][0]["Status"] == "Available":
                return
            self._sleep(SEED_POLL_SECONDS)

    def backup(self, instance_id: str) -> None:
        """create image -> wait -> copy -> wait, for one instance."""
        stamp = self._stamp()
        create = CreateImageRequest()
        create.add_query_param("RegionId", self.source)
        create.add_query_param("InstanceId", instance_id)
        create.add_query_param("ImageName", f"api-source-image{stamp}")
        create.add_query_param("Description", f"api-source-image source image {stamp}")
        image_id = self._do(self.source, create)["ImageId"]
        self._wait_available(self.source, image_id)
        stamp = self._stamp()
        copy = CopyImageRequest()
        copy.add_query_param("RegionId", self.source)
        copy.add_query_param("DestinationRegionId", self.dest)
        copy.add_query_param("DestinationImageName", f"api-destination-image{stamp}")
        copy.add_query_param("DestinationDescription", f"api-destination-image copy {stamp}")
        copy.add_query_param("ImageId", image_id)
        copy_id = self._do(self.source, copy)["ImageId"]
        self._wait_available(self.dest, copy_id)


def run_baseline(w: World, dest_region: str) -> BaselineResult:
    """Back up every Aliyun instance of ``w`` one after the other; simulated time from the emulator's clock."""
    script = SeedScript(w, dest_region)
    before = w.emu.counters().calls.get("aliyun", {})
    sim_start, real_start = w.emu.now(), time.perf_counter()
    for instance_id in w.ids["aliyun"]:
        script.backup(instance_id)
    simulated = (w.emu.now() - sim_start).total_seconds()
    after = w.emu.counters().calls.get("aliyun", {})
    by_action = {a: n - before.get(a, 0) for a, n in after.items() if n - before.get(a, 0)}
    return BaselineResult(
        len(w.ids["aliyun"]), simulated, time.perf_counter() - real_start, sum(by_action.values()), by_action
    )
