"""Cases as services: alerts in (`ingest`), people's actions (`actions`), the command center's controls
(`controls`: 延期, 挂起, 督办), 协办 parts (`parts`) and the scheduler that turns clocks into events."""
