"""Tests of the gateway core: router, notifier, dispatch loop, config, access and rendering."""
