"""The words both sides show for a case's kind: category names in Chinese (first) and English.

The hub's labels (`hub.policy.labels`, which a deployment's labels.yaml extends) start from this table, and the
edge writes an alert's default message with it (a rule without its own `message:`), so the wall reads
`燃气泄漏 · gas-03` rather than `gas-high (gas_leak) at gas-03`.
"""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["zh-CN", "en"]

CATEGORY: Final[dict[str, tuple[str, str]]] = {  # code -> (zh-CN, en)
    "gas_leak": ("燃气泄漏", "Gas leak"), "flood": ("积水内涝", "Flooding"), "intrusion": ("区域入侵", "Intrusion"),
    "fire": ("火情", "Fire"), "tamper": ("设备遮挡破坏", "Camera tamper"),
    "device_offline": ("设备离线", "Device offline"),
    "device_fault": ("设备故障", "Device fault"), "structure": ("结构异常", "Structural strain"),
    "protection_degraded": ("监测能力下降", "Protection degraded"),
    "agent_offline": ("边缘节点离线", "Edge agent offline"),
    "smoke": ("烟雾", "Smoke"), "water_level": ("水位超限", "Water level"), "road": ("道路设施", "Road"),
    "sanitation": ("环境卫生", "Sanitation"), "other": ("其他", "Other"),
    "city_management": ("城市管理", "City management"), "environment": ("生态环境", "Environment"),
}


def category_name(code: str, lang: Lang = "zh-CN") -> str:
    """The category's name; an unknown code is shown as itself."""
    pair = CATEGORY.get(code)
    return code if pair is None else pair[0 if lang == "zh-CN" else 1]
