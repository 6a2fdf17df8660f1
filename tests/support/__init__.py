"""Helpers shared by the tests and the benchmarks: fake agents run as real processes, the
loopback Telegram Bot API, the web board harness (kanban web + headless Chromium), waits."""
