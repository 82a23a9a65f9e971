"""The clouds imagebak knows: the one list that config, providers and the emulator all use."""

from __future__ import annotations

from typing import Literal

Vendor = Literal["aliyun", "huawei", "jdcloud"]
VENDORS: tuple[Vendor, ...] = ("aliyun", "huawei", "jdcloud")
