"""Notices to people: the queue that plans (through `hub.policy.notices`), claims, sends and records, and one
module per channel integration."""
