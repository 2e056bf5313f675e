"""`hub check | plan | apply | export | schema`: thin wrappers; the work is in load/plan/apply/export.

Output and exit statuses are the contract of ../shared/DESIGN.md ("Commands").
"""

from __future__ import annotations

import json

from django.conf import settings

from identityhub.crypto import DecryptionError

from .apply import apply_config, plan_config
from .errors import ConfigError
from .export import export_config
from .load import LoadedConfig, load_config
from .schema import json_schema


def _load(command, options) -> LoadedConfig | None:
    file = options.get("file") or settings.HUB_CONFIG
    if not file:
        command.stderr.write("no config file: give FILE or set HUB_CONFIG")
        return None
    try:
        return load_config(file)
    except ConfigError as error:
        _report(command, error)
        return None


def _report(command, error: ConfigError) -> None:
    for problem in error.problems:
        command.stderr.write(str(problem))


def run_check(command, options) -> int:
    loaded = _load(command, options)
    if loaded is None:
        return 1
    command.stdout.write(f"{loaded.file}: ok")
    return 0


def run_plan(command, options) -> int:
    loaded = _load(command, options)
    if loaded is None:
        return 1
    try:
        plan = plan_config(loaded, prune=bool(options.get("prune")), adopt=bool(options.get("adopt")))
    except ConfigError as error:
        _report(command, error)
        return 1
    except DecryptionError as error:
        command.stderr.write(f"{loaded.file}: {error}")
        return 1
    for line in plan.lines():
        command.stdout.write(line)
    return 2 if options.get("detailed_exitcode") and plan.has_changes else 0


def run_apply(command, options) -> int:
    loaded = _load(command, options)
    if loaded is None:
        return 1
    try:
        plan = apply_config(loaded, prune=bool(options.get("prune")), adopt=bool(options.get("adopt")))
    except ConfigError as error:
        _report(command, error)
        return 1
    for line in plan.lines():
        command.stdout.write(line)
    command.stdout.write("Applied.")
    return 0


def run_export(command, options) -> int:
    try:
        text, _variables = export_config()
    except DecryptionError as error:
        command.stderr.write(str(error))
        return 1
    command.stdout.write(text, ending="")
    return 0


def run_schema(command, options) -> int:
    command.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0
