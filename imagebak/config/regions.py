"""Regions each provider has, and the offline-checkable copy rules tied to them.

The lists are what the vendors publish; an account's ``extra_regions`` adds a region that
opened after this release, so an outdated list never blocks a backup.
"""

from __future__ import annotations

from imagebak.vendors import Vendor

KNOWN_REGIONS: dict[Vendor, frozenset[str]] = {
    "aliyun": frozenset(
        {
            "cn-qingdao",
            "cn-beijing",
            "cn-zhangjiakou",
            "cn-huhehaote",
            "cn-wulanchabu",
            "cn-hangzhou",
            "cn-shanghai",
            "cn-nanjing",
            "cn-fuzhou",
            "cn-wuhan-lr",
            "cn-shenzhen",
            "cn-heyuan",
            "cn-guangzhou",
            "cn-chengdu",
            "cn-hongkong",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-southeast-1",
            "ap-southeast-3",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "us-east-1",
            "us-west-1",
            "eu-west-1",
            "eu-central-1",
            "me-east-1",
            "me-central-1",
            "na-south-1",
        }
    ),
    "huawei": frozenset(
        {
            "cn-north-1",
            "cn-north-2",
            "cn-north-4",
            "cn-north-9",
            "cn-north-11",
            "cn-east-2",
            "cn-east-3",
            "cn-east-4",
            "cn-east-5",
            "cn-south-1",
            "cn-south-2",
            "cn-south-4",
            "cn-southwest-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "af-south-1",
            "af-north-1",
            "la-north-2",
            "la-south-2",
            "sa-brazil-1",
            "na-mexico-1",
            "tr-west-1",
            "me-east-1",
            "ru-moscow-1",
        }
    ),
    "jdcloud": frozenset({"cn-north-1", "cn-east-1", "cn-east-2", "cn-south-1", "cn-central-1"}),
}

# Huawei IMS: whole-machine images copy across regions only between these five
# (华北-北京一, 华北-北京四, 华东-上海一, 华东-上海二, 华南-广州), and need a destination vault.
HUAWEI_WHOLE_IMAGE_COPY_REGIONS = frozenset({"cn-north-1", "cn-north-4", "cn-east-2", "cn-east-3", "cn-south-1"})
