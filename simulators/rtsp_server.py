"""An RTSP server for tests and demos: GStreamer's gst-rtsp-server (Debian: gstreamer1.0-rtsp,
gir1.2-gst-rtsp-server-1.0) serving H.264 or H.265 MP4 files without re-encoding.

Run with Debian's Python, which has PyGObject (`/usr/bin/python3 simulators/rtsp_server.py --port 8554
cam1=/path/a.mp4 cam2=/path/b.mp4`): each mount `rtsp://127.0.0.1:8554/cam1` plays its file at its own
frame rate, from the start when the first client comes (clients of one mount share one pipeline); the
stream ends with the file. It prints `ready <port>` when it listens. This file
is standalone on purpose: the project's venv has no GObject bindings and needs none.
"""

from __future__ import annotations

import argparse
import signal
import sys


def launch_line(path: str) -> str:
    codec = "h265" if path.endswith((".h265.mp4", ".hevc.mp4")) else "h264"
    src = f'filesrc location="{path}" ! qtdemux ! {codec}parse config-interval=-1'
    return f"( {src} ! rtp{codec}pay name=pay0 pt=96 config-interval=1 )"


def main() -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("mounts", nargs="+", help="name=file.mp4")
    args = p.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for m in args.mounts:
        name, _, path = m.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(path))
        factory.set_shared(True)  # one pipeline per mount, however many clients
        mounts.add_factory(f"/{name}", factory)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):  # handled inside GLib's loop, which holds the interpreter
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"ready {args.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
