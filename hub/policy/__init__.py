"""The hub's pure policy floor: the case life cycle, SLA clocks and lights, escalation, the access policy,
routing, the org tree, calendars, duty rosters, the stage view, display names and the notice planner.
No database, no network, no hub service: data in, decisions out (the import contracts keep it so)."""
