"""`gridwatch gateway`: the camera gateway (RTSP/MJPEG, vendor alarms) and the GB/T 28181 upper platform."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridwatch.cli.common import print_problems, serve_gateway

if TYPE_CHECKING:
    pass



def _gateway_camera(args: argparse.Namespace) -> int:
    from edge.camera_gateway.config import load_camera_config
    from edge.camera_gateway.gateway import CameraGateway
    from gridwatch.core.errors import ConfigError

    try:
        cfg = load_camera_config(args.config)
    except ConfigError as exc:
        print_problems(exc.problems, sys.stderr)
        return 1
    gw = CameraGateway(cfg)
    return serve_gateway(gw, lambda: f"camera gateway: {len(cfg.cameras)} cameras")


def _gateway_gb28181(args: argparse.Namespace) -> int:
    from edge.gb28181.config import load_gb_config
    from edge.gb28181.gateway import GbGateway
    from gridwatch.core.errors import ConfigError

    try:
        cfg = load_gb_config(args.config)
    except ConfigError as exc:
        print_problems(exc.problems, sys.stderr)
        return 1
    gw = GbGateway(cfg)
    return serve_gateway(gw, lambda: f"GB/T 28181 gateway: SIP server {cfg.sip.id}@{cfg.sip.domain} on "
                                      f"{cfg.sip.host}:{gw.port} ({'/'.join(cfg.sip.transports)}), "
                                      f"{len(cfg.devices)} device(s) and platform(s)")


def add(top: Any) -> None:
    """The group's commands under the top-level parser's subcommands."""
    gateway = top.add_parser("gateway", help="gateways shipped with gridwatch").add_subparsers(
        dest="gateway_cmd", required=True)
    gcam = gateway.add_parser("camera", help="RTSP/MJPEG streams and camera alarms (ISAPI, Dahua) to MQTT")
    gcam.add_argument("-c", "--config", type=Path, default=Path("configs/cameras.yaml"))
    gcam.set_defaults(func=_gateway_camera)
    ggb = gateway.add_parser("gb28181", help="GB/T 28181: cameras, NVRs and lower platforms register over SIP; "
                                             "catalogs to the device registry, alarms and liveness to MQTT")
    ggb.add_argument("-c", "--config", type=Path, default=Path("configs/gb28181.yaml"))
    ggb.set_defaults(func=_gateway_gb28181)
