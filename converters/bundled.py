"""The engine modules a frozen bundle must ship because they are loaded by name, not imported.

Every entry comes from the engine's own tables: the format registry (readers and runners), the worker
tasks, the conversion hops and the CLI's sub-command plug-ins. ``packaging/tensorbridge.spec`` passes
:func:`modules` to PyInstaller as hidden imports and ``tests/test_registries.py`` imports each of them,
so a table that names a missing module fails the default test run before a bundle is ever built.
Importing this module imports no framework.
"""
from __future__ import annotations

__all__ = ["modules", "framework_modules", "CLI_PLUGINS", "ENTRY_MODULES"]

# converters.cli._load_plugins imports these by name; they register their sub-commands on import.
CLI_PLUGINS = ("converters.routes.cli", "converters.compare.cli", "converters.parity.cli")
# What the bundled executables start: the worker's main loop.
ENTRY_MODULES = ("converters.jobs.worker",)


def modules() -> list[str]:
    """Sorted, unique module names: readers, runners, tasks, hops, CLI plug-ins and the worker."""
    from .formats import registry
    from .jobs.tasks import TASKS
    from .routes.planner import HOPS

    mods = set(registry.modules())
    mods.update(spec.split(":")[0] for spec in TASKS.values())
    mods.update(f"converters.routes.{h.name}" for h in HOPS)
    mods.update(CLI_PLUGINS)
    mods.update(ENTRY_MODULES)
    return sorted(mods)


def framework_modules() -> list[str]:
    """The framework modules a warm worker imports by name before its first job."""
    from .jobs.pool import FAMILY_PRELOAD

    return sorted({m for mods in FAMILY_PRELOAD.values() for m in mods})
