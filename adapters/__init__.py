"""Chat platform adapters, found through entry points: ``<platform>.py`` and ``<platform>_*.py``."""
