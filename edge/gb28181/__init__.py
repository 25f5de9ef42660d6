"""The GB/T 28181 access gateway: cameras, NVRs and lower video platforms register with gridwatch as their
upper platform (SIP), and their catalogs, keepalives and alarms become the device registry, camera statuses
and camera events of gridwatch's MQTT contract.

The wire formats (SIP, digest, MANSCDP) are in `gridwatch.core.gb28181`, shared with the emulator. Modules
here: `alarms` (alarm methods and types as camera events, pure), `presence`
(registration and keepalive liveness, the REGISTER rate limit, pure), `config` (the file), `registry` (catalog
channels into the hub's device registry), `gateway` (the asyncio SIP server, MQTT, metrics).
"""
