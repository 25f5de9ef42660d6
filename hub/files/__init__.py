"""The hub's files on disk: calendar files (loading, writing, importing a year) and the live reload of the
org tree, SLA policies, routing and calendars."""
