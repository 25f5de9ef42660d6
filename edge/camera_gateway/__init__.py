"""The camera gateway: real IP cameras into gridwatch's MQTT contract.

`gridwatch gateway camera -c configs/cameras.yaml` reads each camera's RTSP (or HTTP MJPEG, or file)
stream, publishes sampled JPEG frames to `gw/{grid}/camera/{device}/frame` and the stream's liveness to
`…/status`, and turns the camera's own alarms (Hikvision ISAPI, Dahua eventManager, ONVIF events) into
`…/event` messages. Modules: `config` (the file), `stream` (PyAV reading and sampling), `liveness`
(online/offline from frame times, pure), `alarms` (the vendors' wire formats, pure), `sources` (their
HTTP clients), `gateway` (threads, MQTT, metrics).
"""
