"""Recorded clips on a case through the API (issue 41; the gateway's side is tests/test_gb28181_clip.py): an MP4
the gateway sends is kept with the case, listed with its span and served as video/mp4 to whoever sees the case;
what is not an MP4, or is larger than `limits.max_clip_bytes`, is refused with the reason; a viewer sends none."""

from __future__ import annotations

from tests.footagekit import h264
from tests.hubkit import api_client
from tests.test_case_control import KEYS, H, T, alert, case, send


def test_a_gateways_clip_is_kept_listed_served_and_checked(db_url):
    mp4 = h264("vtest-768-gop10-15s", seconds=15, gop=10).read_bytes()
    with api_client(db_url, KEYS, T, limits={"max_clip_bytes": len(mp4) + 10}) as c:
        case_id = send(c, alert("a1"))[0]["case_id"]
        url = f"/api/v1/cases/{case_id}/clips"
        span = {"start": "2026-11-23T01:59:50+00:00", "end": "2026-11-23T02:00:05+00:00", "note": "报警录像"}
        for body, kind, key, code, why in (
                (mp4, "video/mp4", "view-g2", 403, ""),  # a viewer sends nothing
                (b"\x00\x00\x00\x18GIF89a....", "video/mp4", "ops", 415, "not an MP4"),
                (mp4, "video/webm", "ops", 415, "video/mp4"),
                (mp4 + b"\x00" * 11, "video/mp4", "ops", 413, "at most")):
            r = c.post(url, content=body, params=span, headers={**H(key), "Content-Type": kind})
            assert r.status_code == code and why in r.text, (code, r.text[:200])
        r = c.post(url, content=mp4, params=span, headers={**H("ops"), "Content-Type": "video/mp4"})
        assert r.status_code == 201, r.text
        (clip,) = r.json()["clips"]
        assert (clip["note"], clip["start"], clip["end"]) == (
            "报警录像", "2026-11-23T01:59:50Z", "2026-11-23T02:00:05Z")
        assert clip["url"] in r.json()["evidence"]
        got = c.get(clip["url"], headers=H("ops"))
        assert got.status_code == 200 and got.headers["content-type"] == "video/mp4" and got.content == mp4
        assert c.get(clip["url"], headers=H("ops-g3")).status_code == 404  # grid-03 does not see the case
        assert [e["action"] for e in case(c, case_id)["timeline"]].count("clip") == 1
