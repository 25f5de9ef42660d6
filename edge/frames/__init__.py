"""Frames from video sources, shared by both gateways: reading a stream into sampled frames (`stream`), a
source's liveness (`liveness`), and a frame published as the frame contract has it (`publish`)."""
