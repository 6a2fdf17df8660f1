"""Chat platform adapters, one module per platform, loaded through entry points (issue #4)."""
