"""gridwatch hub: cases, SLA clocks, lights and escalation (built in its own issue)."""
