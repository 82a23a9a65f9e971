"""Local cloud emulator: Aliyun ECS, Huawei IMS/ECS/EVS and JD Cloud VM over their real wire protocols.

Only the CLI and tests import this package; the engine never does. See docs/emulator.md.
"""

from imagebak.emulator.clock import Clock, ManualClock, SystemClock
from imagebak.emulator.model import (
    Account,
    CloudError,
    CloudModel,
    Disk,
    Image,
    ImageDisk,
    Instance,
    Snapshot,
    Task,
)
from imagebak.emulator.wire import FrontEnd, WireRequest, WireResponse

__all__ = [
    "Account",
    "Clock",
    "CloudError",
    "CloudModel",
    "Disk",
    "FrontEnd",
    "Image",
    "ImageDisk",
    "Instance",
    "ManualClock",
    "Snapshot",
    "SystemClock",
    "Task",
    "WireRequest",
    "WireResponse",
]
