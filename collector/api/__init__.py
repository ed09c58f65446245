"""The collector's REST API (FastAPI), built by ``collector.api.app.create_app``."""
