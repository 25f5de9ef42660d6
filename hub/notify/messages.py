"""The messages notices travel in: a robot's due notices grouped into messages of at most MAX_BYTES (every case
named), one notice's own message otherwise, and targets masked for the timeline."""

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


def message(batch: list[Notice]) -> Message:
    ids = tuple(n.id for n in batch)
    mentions = tuple(dict.fromkeys(str(n.body["mention"]) for n in batch if n.body.get("mention")))
    first = batch[0]
    notices = [{"notice": n.id, "case_id": n.case_id, "kind": n.kind, "title": n.body["title"],
                "recipient": n.recipient} for n in batch]
    # one line per case and kind: the same case told to the two people on duty through one robot is one
    # message @-ing both, not the case twice
    # (a notice's key is event:template:recipient:channel, a calendar's calendar:name:day:recipient:channel)
    lines = list({n.key.rsplit(":", 2)[0]: n for n in reversed(batch)}.values())[::-1]
    if len(lines) == 1:
        return Message(ids, first.body["title"], first.body["text"], to=first.target, mentions=mentions,
                       sms_template=str(first.body.get("sms_template", "")), sms_params=first.body.get("sms", {}),
                       notices=notices)
    title = f"【{len(lines)} 条通知】"
    text = f"### {title}\n" + "\n".join(f"- {n.body['line']}" for n in lines)
    return Message(ids, title, text, mentions=mentions, notices=notices)

