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
LEAVES: Final[dict[str, frozenset[str]]] = {k: frozenset({leaf, STATUS_LEAF}) for k, leaf in DATA_LEAF.items()}

VIDEO_KINDS: Final[frozenset[str]] = frozenset({"camera", "thermal"})
"""Kinds whose data are frames: they go through a scene model and their alerts carry snapshots."""
