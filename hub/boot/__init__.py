"""Starting the hub: the store over the configured database (`store`), the app (`app`, the one app factory:
nothing in the hub imports it), `hub init` and `hub check`. The top floor: only the command line, the demo and
tests import it."""
