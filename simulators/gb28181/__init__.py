"""An emulated GB/T 28181 device or lower platform (下级平台) with N channels, for tests and benches.

Written from GB/T 28181-2016, the clauses as cited: it registers with digest authentication (§9.1.2.1: a
REGISTER, the 401's challenge, a REGISTER with `Authorization`), sends `Keepalive` every period (§9.6.1,
A.2.5 `<Notify><CmdType>Keepalive</CmdType>…<Status>OK</Status>`), answers a `Catalog` query (§9.5.2) with
200 and then its channels in pages of `page` items (`SumNum`, `DeviceList Num`; wvp-GB28181-pro and the
vendors' platforms send 1–20 per page over UDP), pushes `Alarm` notifications (§9.4.1, A.2.5) and catalog
changes (§9.5.4), answers an INVITE (§9.2.2) with its SDP and, after the ACK, streams real footage as MPEG-PS
over RTP (§C.2; UDP, or TCP connecting to the gateway), until a BYE; and unregisters with Expires: 0
(§9.1.2.2). SIP over UDP or TCP (RFC 3261 §18). Bodies
are GB2312 as most devices send them (`charset`). Requests are written here from the standard's examples;
answers are read with the shared parser (`gridwatch.core.gb28181.sip`).

`GbDevice` runs one device on its own socket and thread. `Swarm` runs thousands of devices on one UDP
socket (each its own From id), for the registration and keepalive bench.
"""

from simulators.gb28181.catalog import ChannelInfo, make_channels
from simulators.gb28181.device import GbDevice
from simulators.gb28181.swarm import Swarm

__all__ = ["ChannelInfo", "GbDevice", "Swarm", "make_channels"]
