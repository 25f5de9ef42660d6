"""The video analysis of the edge agent (beside `edge.camera_gateway`, the program that turns cameras into
frames and alarm events): `scene` (a model per camera: motion mask, recalibration, tamper measurements),
`pipeline` (`Video`: frames through their scene model before the rules, evidence as alerts fire) and
`evidence` (the snapshot an alert carries, with the zone and regions drawn). Identities are never
detected: events only."""
