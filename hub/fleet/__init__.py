"""The fleet: edge agents and their rule sets (`agents`), the device registry, device states and the map
view (`devicestate`), maintenance windows and the broker's ACL."""
