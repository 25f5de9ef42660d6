"""Display names (zh-CN and English) of the codes people see: categories, severities, case states, stages,
actions, unit levels, lights and timeline entries. Built-in names for every code the hub itself uses; a
deployment's `labels:` file (YAML, same shape) adds its own categories and renames any of them. The board
and the exports show these names, never raw codes; a code without a name is shown as itself.

    category:
      gas_leak: {zh-CN: 燃气泄漏, en: Gas leak}
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridwatch.core.words import CATEGORY
from gridwatch.core.yamlconf import load

Lang = Literal["zh-CN", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh-CN", "en")
KINDS: Final = ("category", "severity", "status", "stage", "action", "level", "light", "tier", "rating", "warning",
                "event")


class Name(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    zh: str = Field(alias="zh-CN", min_length=1, max_length=64)
    en: str = Field(min_length=1, max_length=64)


class LabelsFile(BaseModel):
    """`labels.yaml`: kind -> code -> names."""

    model_config = ConfigDict(extra="forbid")

    category: dict[str, Name] = Field(default_factory=dict)
    severity: dict[str, Name] = Field(default_factory=dict)
    status: dict[str, Name] = Field(default_factory=dict)
    stage: dict[str, Name] = Field(default_factory=dict)
    action: dict[str, Name] = Field(default_factory=dict)
    level: dict[str, Name] = Field(default_factory=dict)
    light: dict[str, Name] = Field(default_factory=dict)
    tier: dict[str, Name] = Field(default_factory=dict)
    rating: dict[str, Name] = Field(default_factory=dict)
    warning: dict[str, Name] = Field(default_factory=dict)
    event: dict[str, Name] = Field(default_factory=dict, description="the notices' event words (`event` field)")


def _n(zh: str, en: str) -> Name:
    return Name.model_validate({"zh-CN": zh, "en": en})


BUILT_IN: Final[dict[str, dict[str, Name]]] = {
    "category": {code: _n(zh, en) for code, (zh, en) in CATEGORY.items()},
    "severity": {"info": _n("提示", "info"), "minor": _n("一般", "minor"), "major": _n("重要", "major"),
                 "critical": _n("紧急", "critical")},
    "status": {"reported": _n("待派单", "to dispatch"), "open": _n("待签收", "open"),
               "accepted": _n("办理中", "in hand"), "resolved": _n("待核查", "to verify"),
               "verified": _n("待回访", "to call back"), "on_hold": _n("挂起", "on hold"),
               "closed": _n("已结案", "closed")},
    "stage": {"dispatch": _n("派单", "dispatch"), "accept": _n("签收", "sign for"), "resolve": _n("办理", "handle"),
              "feedback": _n("核查", "verify"), "callback": _n("回访", "call back")},
    "rating": {"satisfied": _n("满意", "satisfied"), "basically": _n("基本满意", "basically satisfied"),
               "unsatisfied": _n("不满意", "unsatisfied")},
    "action": {"accept": _n("签收", "Sign for"), "resolve": _n("办结", "Report result"), "hold": _n("挂起", "Hold"),
               "resume": _n("恢复", "Resume"), "transfer": _n("转派", "Transfer"), "comment": _n("备注", "Comment"),
               "close": _n("核查通过", "Verify"), "dispatch": _n("派单", "Dispatch"),
               "reject": _n("核查不通过", "Fail verification"), "callback": _n("回访", "Call back"),
               "part_signed": _n("协办签收", "part signed for"), "part_reported": _n("协办办结", "part reported"),
               "notified": _n("通知", "notice"),
               "suspension_requested": _n("申请挂起", "suspension requested"),
               "suspension_approved": _n("同意挂起", "suspension approved"),
               "suspension_refused": _n("不同意挂起", "suspension refused"), "opened": _n("立案", "opened"),
               "merged": _n("合并告警", "alert merged"),
               "light": _n("亮灯", "light"), "escalated": _n("升级", "escalated"),
               "backup_notified": _n("通知AB岗", "backup notified"), "reminder": _n("催办", "reminder"),
               "condition_cleared": _n("现场消警", "condition cleared"),
               "severity_raised": _n("级别提升", "severity raised"),
               "warning_raised": _n("预警升级", "warning raised"), "warning_lowered": _n("预警降级", "warning lowered"),
               "condition_returned": _n("告警复现", "condition returned"), "photo": _n("上传照片", "photo added"),
               "clip": _n("录像片段", "recorded clip"),
               "reopened": _n("重新办理", "reopened"), "repeat": _n("重复件", "repeat case"),
               "assigned": _n("指派", "assigned"), "extension_requested": _n("申请延期", "extension requested"),
               "extension_approved": _n("同意延期", "extension approved"),
               "extension_refused": _n("不同意延期", "extension refused"), "supervised": _n("督办", "supervised"),
               "supervision_replied": _n("回复督办", "supervision replied"), "sent_back": _n("退回", "sent back"),
               "look_asked": _n("视频复核", "video check asked"), "look_done": _n("复核画面", "video check")},
    "level": {"grid": _n("网格", "grid"), "community": _n("社区", "community"), "street": _n("街道", "street"),
              "district": _n("区", "district"), "department": _n("职能部门", "department")},
    "warning": {"blue": _n("蓝色预警", "blue warning"), "yellow": _n("黄色预警", "yellow warning"),
                "orange": _n("橙色预警", "orange warning"), "red": _n("红色预警", "red warning")},
    "light": {"red": _n("红灯", "RED"), "yellow": _n("黄灯", "YELLOW"), "green": _n("绿灯", "GREEN")},
    "tier": {"general": _n("一般", "general"), "important": _n("较大", "important"), "major": _n("重大", "major")},
    "event": {"opened": _n("新案件", "new case"), "dispatched": _n("派单", "dispatched"),
              "yellow": _n("黄灯预警", "yellow light"), "red": _n("红灯警告", "red light"),
              "still_red": _n("持续红灯", "still red"), "escalated": _n("升级督办", "escalated"),
              "backup": _n("AB角协办", "backup"), "supervised": _n("督办", "supervised"),
              "extension_decided": _n("延期审批", "extension decided"),
              "suspension_decided": _n("挂起审批", "suspension decided"), "sent_back": _n("退回", "sent back"),
              "reopened": _n("重新办理", "reopened"), "agent_offline": _n("设备离线", "agent offline"),
              "supervision_overdue": _n("督办逾期未回复", "supervision reply overdue"),
              "warning_raised": _n("预警升级", "warning raised"),
              "calendar": _n("工作日历即将用完", "calendar running out")},
}


class Labels:
    """The merged names: built-in, then the deployment's file on top."""

    def __init__(self, extra: LabelsFile | None = None) -> None:
        self.names: dict[str, dict[str, Name]] = {k: dict(v) for k, v in BUILT_IN.items()}
        for kind in KINDS:
            self.names[kind].update(getattr(extra, kind) if extra is not None else {})

    def name(self, kind: str, code: str | None, lang: Lang = "zh-CN") -> str:
        if code is None:
            return ""
        found = self.names.get(kind, {}).get(code)
        return code if found is None else (found.zh if lang == "zh-CN" else found.en)

    def table(self) -> dict[str, dict[str, dict[str, str]]]:
        """kind -> code -> {"zh-CN": ..., "en": ...}: what the board fetches once."""
        return {kind: {code: {"zh-CN": n.zh, "en": n.en} for code, n in codes.items()}
                for kind, codes in self.names.items()}


def load_labels(path: Path | None) -> Labels:
    if path is None:
        return Labels()
    return Labels(load(LabelsFile, path))
