"""config.yaml: one declarative schema (schema, model), its validated-file record (cache), and the
kernel's sections as frozen values (loader)."""

from kanban_core.config.loader import (
    BoardConfig,
    DispatcherConfig,
    KanbanConfig,
    MaintenanceConfig,
    PermissionsConfig,
    config_path,
    load_board_config,
    load_config,
)

__all__ = [
    "BoardConfig",
    "DispatcherConfig",
    "KanbanConfig",
    "MaintenanceConfig",
    "PermissionsConfig",
    "config_path",
    "load_board_config",
    "load_config",
]
