"""The web board: an authenticated board and REST API over the same command tree as chat."""
