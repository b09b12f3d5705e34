"""Live notification feeds for Django: models, a one-line API and an SSE stream."""

__version__ = "0.1.0"
