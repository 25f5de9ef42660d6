"""People and machines who call the hub: accounts, passwords and lockout, sessions, the second factor, API
keys, contact points and the data key that seals them."""
