"""The messages notices travel in: a robot's due notices grouped into messages of at most MAX_BYTES (every case
named), one notice's own message otherwise, the event words, and targets masked for the timeline."""

from __future__ import annotations

from hub.notify.channels import Message
from hub.store.models import Notice

MAX_BYTES = 4000  # WeCom markdown: at most 4096 bytes


def mask(target: str) -> str:
    """A mobile as 138****5678, a mailbox as z***@example.org; robots' ids as they are."""
    if "@" in target:
        name, _, host = target.partition("@")
        return f"{name[:1]}***@{host}"
    if target.isdigit() and len(target) >= 7:
        return f"{target[:3]}****{target[-4:]}"
    return target


def group(rows: list[Notice], room: int) -> list[list[Notice]]:
    """Robots: what is due in at most `room` messages of at most MAX_BYTES each; the rest waits."""
    out: list[list[Notice]] = []
    cur: list[Notice] = []
    size = 0
    for n in rows:
        line = len(str(n.body.get("line", "")).encode()) + 4
        if cur and size + line > MAX_BYTES:
            out.append(cur)
            if len(out) == room:
                return out
            cur, size = [], 0
        cur.append(n)
        size += line
    if cur:
        out.append(cur)
    return out[:room]


def message(batch: list[Notice], kind: str) -> Message:
    ids = tuple(n.id for n in batch)
    mentions = tuple(dict.fromkeys(str(n.body["mention"]) for n in batch if n.body.get("mention")))
    first = batch[0]
    notices = [{"notice": n.id, "case_id": n.case_id, "kind": n.kind, "title": n.body["title"],
                "recipient": n.recipient} for n in batch]
    if len(batch) == 1:
        return Message(ids, first.body["title"], first.body["text"], to=first.target, mentions=mentions,
                       sms_template=str(first.body.get("sms_template", "")), sms_params=first.body.get("sms", {}),
                       notices=notices)
    title = f"【{len(batch)} 条通知】"
    text = f"### {title}\n" + "\n".join(f"- {n.body['line']}" for n in batch)
    return Message(ids, title, text, mentions=mentions, notices=notices)


EVENT = {"opened": "新案件", "dispatched": "派单", "yellow": "黄灯预警", "red": "红灯警告", "still_red": "持续红灯",
          "escalated": "升级督办", "backup": "AB角协办", "supervised": "督办", "extension_decided": "延期审批",
          "suspension_decided": "挂起审批", "sent_back": "退回", "reopened": "重新办理", "agent_offline": "设备离线",
          "supervision_overdue": "督办逾期未回复", "warning_raised": "预警升级"}
"""The event words of the messages (the `event` field)."""
