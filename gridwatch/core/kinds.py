"""The feed kinds: the one list of what devices send and under which topic leaves.

`gw/{grid}/{kind}/{device}/{leaf}`: every kind has a data leaf and a `status` leaf (the gateway's
retained `online` / `offline`). `status` is also the kind of an event decoded from a status leaf.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

FeedKind = Literal["sensor", "fence", "camera", "thermal"]
FEED_KINDS: Final[tuple[FeedKind, ...]] = get_args(FeedKind)

EventKind = Literal["sensor", "fence", "camera", "thermal", "status"]
"""What an event decoded from a feed is: a feed kind, or `status` for the status leaf."""

DATA_LEAF: Final[dict[FeedKind, str]] = {"sensor": "reading", "fence": "event", "camera": "frame",
                                         "thermal": "frame"}
STATUS_LEAF: Final = "status"
EVENT_LEAF: Final = "event"
"""Besides frames, a camera publishes its own alarms (motion, line crossing…) as events on this leaf."""
EXTRA_LEAVES: Final[dict[FeedKind, tuple[str, ...]]] = {"camera": (EVENT_LEAF,)}
LEAVES: Final[dict[str, frozenset[str]]] = {
    k: frozenset({leaf, STATUS_LEAF, *EXTRA_LEAVES.get(k, ())}) for k, leaf in DATA_LEAF.items()}

CameraEventName = Literal["motion", "line_crossing", "intrusion", "region_entrance", "region_exiting",
                          "loitering", "video_loss", "tamper", "defocus", "scene_change"]
CAMERA_EVENTS: Final[tuple[CameraEventName, ...]] = get_args(CameraEventName)
"""What a camera's own alarm is called on `gw/{grid}/camera/{device}/event`, whatever its vendor called it."""

VIDEO_KINDS: Final[frozenset[str]] = frozenset({"camera", "thermal"})
"""Kinds whose data are frames: they go through a scene model and their alerts carry snapshots."""
