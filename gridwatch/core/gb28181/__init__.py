"""GB/T 28181's wire formats, shared by the access gateway (edge/gb28181) and its emulator (simulators/):
`sip` (SIP messages and TCP framing), `digest` (digest authentication), `manscdp` (the XML commands, read with
a hardened parser). Pure: no I/O, clocks and secrets passed in."""
