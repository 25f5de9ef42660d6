"""The storage floor: the tables (`models`), engines and migrations (`db`), the store of the case aggregate
(`cases`: sessions, the cases' queries, clocks and the append-only timeline) and the read cache of maintenance
windows (`windows`). Above the policy floor, below every service."""
