"""Real footage for tests and benchmarks, from a package registry: OpenCV's sample clips in Debian.

`vtest.avi` (OpenCV's `samples/data`, shipped by Debian's `opencv-doc` package) is 79 s of a fixed camera
over a campus walkway, 768x576 at 10 fps: people walk across a road and a lawn, a parked van, lamp posts,
a tripod. It is fetched once with `apt-get download opencv-doc` (no install, no root needed for the
download itself) and the clip alone is kept in the cache directory (`var/footage/` by default,
`GRIDWATCH_FOOTAGE` to move it). An installed `opencv-doc` is used as it is.

`encode()` re-encodes frames (optionally transformed: a light sweep, a pan, a cover) as H.264 in an MP4
with a fixed keyframe interval, with PyAV's libx264, for the RTSP server and the gateway benchmark.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

PACKAGE = "opencv-doc"
MEMBER = "./usr/share/doc/opencv-doc/examples/data/{name}"
INSTALLED = Path("/usr/share/doc/opencv-doc/examples/data")


def cache_dir() -> Path:
    return Path(os.environ.get("GRIDWATCH_FOOTAGE", Path(__file__).resolve().parent.parent / "var" / "footage"))


def clip(name: str = "vtest.avi") -> Path:
    """Path of one of OpenCV's sample clips, fetched from Debian's archive on first use."""
    if (INSTALLED / name).is_file():
        return INSTALLED / name
    dest = cache_dir() / name
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, capture_output=True, text=True)
        if got.returncode != 0 and os.geteuid() == 0:  # a fresh machine may have no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            got = subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {PACKAGE} failed ({got.returncode}): {got.stderr.strip()[-400:]}"
                               " (run `apt-get update` first?)")
        out = Path(tmp) / "x"
        out.mkdir()
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(out), MEMBER.format(name=name)], stdin=tar.stdout, check=True)
        tar.wait()
        part = dest.with_suffix(".part")
        shutil.move(str(out / MEMBER.format(name=name)), part)
        part.rename(dest)
    return dest


def frames(path: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """The clip's frames as BGR arrays."""
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if limit is not None and i >= limit:
                return
            yield frame.to_ndarray(format="bgr24")


def encode(src: Iterator[np.ndarray], dest: Path, fps: int, gop: int, size: tuple[int, int] | None = None,
           transform: Callable[[int, np.ndarray], np.ndarray] | None = None, codec: str = "libx264") -> Path:
    """Write frames as H.264 (or `libx265`) in MP4, one keyframe every `gop` frames, no B-frames (as
    surveillance cameras stream)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part.mp4")
    with av.open(str(part), "w") as out:
        st = out.add_stream(codec, rate=fps)
        st.pix_fmt = "yuv420p"
        st.codec_context.gop_size = gop
        st.codec_context.max_b_frames = 0
        opts = {"preset": "veryfast", "tune": "zerolatency", "keyint": str(gop), "min-keyint": str(gop),
                "scenecut": "0"} if codec == "libx264" else {"preset": "veryfast", "x265-params":
                                                              f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0"}
        st.codec_context.options = opts
        sized = False
        for i, img in enumerate(src):
            if transform is not None:
                img = transform(i, img)
            if not sized:
                h, w = (size[1], size[0]) if size else img.shape[:2]
                st.width, st.height = w, h
                sized = True
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            if size is not None and (frame.width, frame.height) != size:
                frame = frame.reformat(width=size[0], height=size[1])
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    part.rename(dest)
    return dest
