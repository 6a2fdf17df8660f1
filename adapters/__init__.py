"""Chat platform adapters via entry points (issue #4): ``<platform>.py`` and ``<platform>_*.py``."""
