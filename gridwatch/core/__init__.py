"""The shared core: the contracts the edge agent, the hub and the simulators all speak.

It owns the alert wire model (`alert`), the feed kinds (`kinds`), names and severities (`names`), the
strict config base and YAML loading with `file:path: reason (line N)` errors (`config`, `yamlconf`),
durations (`durations`) and the error types (`errors`). It imports only third-party libraries: never
`edge`, `hub` or `simulators` (enforced by import-linter in `make lint`).
"""
