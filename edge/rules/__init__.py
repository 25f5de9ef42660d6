"""Rule kinds, one module each (`registry.py` lists them), and the engine that runs them (`engine.py`)."""
