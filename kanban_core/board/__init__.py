"""The board: tasks, links, runs, events, reads, subscriptions and deliveries; the Kanban facade."""
