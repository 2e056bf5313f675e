"""`nas[].new_account_groups`: declared, planned per field, applied, exported, validated."""

from __future__ import annotations

import pytest
import yaml

from synology.models import NAS

from .conftest import CONFIG

pytestmark = pytest.mark.django_db

WITH_GROUPS = CONFIG.replace("    sync_interval: 1h\n", "    sync_interval: 1h\n    new_account_groups: [family, photos]\n", 1)


def test_groups_are_planned_applied_and_exported(config_file, write, run_hub):
    assert run_hub("apply", config_file).code == 0
    assert NAS.objects.get(pk="ds923").new_account_groups == []
    path = write(WITH_GROUPS)
    assert run_hub("plan", path).out.splitlines()[0] == "~ nas ds923: new_account_groups"
    assert run_hub("apply", path).code == 0
    assert NAS.objects.get(pk="ds923").new_account_groups == ["family", "photos"]
    assert run_hub("plan", path).out == "No changes.\n"
    exported = yaml.safe_load(run_hub("export").out)
    assert exported["nas"][0]["new_account_groups"] == ["family", "photos"]


def test_an_empty_group_name_is_an_error_with_its_position(config_file, write, run_hub):
    path = write(CONFIG.replace("    sync_interval: 1h\n", '    sync_interval: 1h\n    new_account_groups: [" "]\n', 1))
    checked = run_hub("check", path)
    assert checked.code == 1
    assert checked.err.endswith(":28:26: nas ds923: new_account_groups: a DSM group name cannot be empty\n")
