"""gridwatch edge agent: MQTT ingestion, decoding, rule evaluation, durable outbox and forwarding."""
