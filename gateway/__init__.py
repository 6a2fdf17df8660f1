"""The long-running asyncio process: router, rendering, auth, notifier, scheduler (issue #4)."""
