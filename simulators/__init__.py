"""gridwatch simulators: device gateways and load generators for tests and demos."""
