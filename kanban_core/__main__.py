"""``python -m kanban_core`` runs the CLI."""

import sys

from kanban_core.cli import main

sys.exit(main())
