"""`hub plan` / `hub apply`: diffs per field, idempotence, all-or-nothing, prune and adopt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import check_password
from oauth2_provider.models import Application

from accounts import services as accounts_services
from accounts.models import Household, Membership, Upstream, User
from identityhub.config.apply import apply_config
from identityhub.config.errors import ConfigError
from identityhub.config.load import load_config
from identityhub.models import AuditEvent
from identityhub.oidc.services import register_client
from synology.models import NAS, AccountMapping

from .conftest import ALL_SECRETS, CONFIG, DSM_SECRET, SYNO_PASSWORD

pytestmark = pytest.mark.django_db


def snapshot() -> dict:
    """Everything apply may touch, comparable before/after."""
    return {
        "upstreams": list(Upstream.objects.order_by("pk").values()),
        "households": list(Household.objects.order_by("pk").values()),
        "memberships": sorted(Membership.objects.values_list("household_id", "user__email", "role")),
        "users": list(User.objects.order_by("email").values(
            "email", "name", "is_active", "managed", "is_staff", "is_superuser")),
        "nases": list(NAS.objects.order_by("pk").values()),
        "mappings": sorted(AccountMapping.objects.values_list("nas_id", "email", "account_name", "managed")),
        "clients": list(Application.objects.order_by("client_id").values(
            "client_id", "name", "client_type", "redirect_uris", "skip_authorization", "profile__nas_id",
            "profile__extra_claims", "profile__managed")),
        "client_households": sorted(Application.objects.values_list("client_id", "profile__households")),
        "audit": AuditEvent.objects.count(),
    }


def test_plan_then_apply_then_no_changes(config_file, run_hub):
    plan = run_hub("plan", config_file)
    assert plan.code == 0, plan.err
    assert plan.out.splitlines() == [
        "+ upstream google",
        "+ household valais",
        "+ household friends",
        "+ person mael@example.com",
        "+ person mum@example.com",
        "+ person pal@example.com",
        "+ nas ds923",
        "+ client ds923-dsm",
        "+ client photos",
        "+ client cli",
        "Plan: 10 to create, 0 to change, 0 to remove.",
    ]
    assert run_hub("plan", config_file, "--detailed-exitcode").code == 2
    assert Upstream.objects.count() == 0  # plan touches nothing

    applied = run_hub("apply", config_file)
    assert applied.code == 0, applied.err
    assert applied.out.splitlines()[-2:] == ["Plan: 10 to create, 0 to change, 0 to remove.", "Applied."]

    again = run_hub("apply", config_file)
    assert again.out.splitlines() == ["No changes.", "Applied."]
    assert run_hub("plan", config_file, "--detailed-exitcode").code == 0
    assert run_hub("plan", config_file).out == "No changes.\n"


def test_apply_writes_what_the_file_says(config_file, run_hub):
    assert run_hub("apply", config_file).code == 0
    google = Upstream.objects.get(pk="google")
    assert (google.type, google.client_id, google.allowed_domains, google.managed) == (
        "google", "1234.apps.googleusercontent.com", ["example.com"], True)
    nas = NAS.objects.get(pk="ds923")
    assert nas.service_password == SYNO_PASSWORD and nas.verify_tls is False and nas.managed
    assert nas.sync_interval == timedelta(hours=1)
    assert list(AccountMapping.objects.values_list("email", "account_name", "managed")) == [
        ("mum@example.com", "maman", True)]
    mael = User.objects.get(email="mael@example.com")
    assert mael.managed and mael.is_staff and mael.name == "Maël Valais"
    assert not mael.is_superuser  # a household admin is staff, never superuser: not an operator
    assert not User.objects.filter(is_superuser=True).exists()
    assert sorted(User.objects.get(email="mum@example.com").households.values_list("pk", flat=True)) == [
        "friends", "valais"]

    dsm = Application.objects.get(client_id="ds923-dsm")
    assert dsm.redirect_uris == "https://ds923.example.com:5001"  # exactly as declared
    assert dsm.client_type == Application.CLIENT_CONFIDENTIAL and dsm.skip_authorization
    assert check_password(DSM_SECRET, dsm.client_secret)
    assert dsm.profile.nas_id == "ds923" and dsm.profile.managed
    assert list(dsm.profile.households.all()) == []  # default: the NAS's household, kept dynamic
    assert dsm.profile.extra_claims["tier"] == {"const": 3}
    cli = Application.objects.get(client_id="cli")
    assert cli.client_type == Application.CLIENT_PUBLIC
    photos = Application.objects.get(client_id="photos")
    assert photos.post_logout_redirect_uris == "https://photos.example.com/"
    assert sorted(photos.profile.households.values_list("pk", flat=True)) == ["friends", "valais"]

    event = AuditEvent.objects.get(kind="config_apply")
    assert event.details["created"] == 10
    assert not any(secret in str(event.details) for secret in ALL_SECRETS)


def test_changes_are_listed_per_field_and_secrets_only_as_changed(config_file, write, run_hub, monkeypatch):
    run_hub("apply", config_file)
    monkeypatch.setenv("SYNO_PASSWORD", "another-password")
    text = (CONFIG.replace("sync_interval: 1h", "sync_interval: 30m")
            .replace("{mum@example.com: maman}", "{mum@example.com: mum, pal@example.com: pal}")
            .replace("      - {email: mum@example.com}\n", "")
            .replace("    name: Friends", "    name: Our friends")
            .replace("skip_consent: true", "skip_consent: false"))
    path = write(text)
    plan = run_hub("plan", path)
    assert plan.out.splitlines() == [
        "~ household friends: name, members (- mum@example.com)",
        "~ nas ds923: sync_interval, service_account.password (secret changed), "
        "accounts (+ pal@example.com, ~ mum@example.com)",
        "~ client ds923-dsm: skip_consent",
        "Plan: 0 to create, 3 to change, 0 to remove.",
    ]
    assert "another-password" not in plan.output
    assert run_hub("apply", path).code == 0
    assert NAS.objects.get(pk="ds923").service_password == "another-password"
    assert not Membership.objects.filter(household_id="friends", user__email="mum@example.com").exists()
    assert run_hub("plan", path).out == "No changes.\n"


def test_client_secret_change_and_public_switch(config_file, write, run_hub, monkeypatch):
    run_hub("apply", config_file)
    monkeypatch.setenv("DSM_CLIENT_SECRET", "Nw3Kx8Qz1Lp6Vr9Ty4Hm7Bc2Fj5Gd0Sa")
    text = CONFIG.replace("    client_secret: ${WEB_CLIENT_SECRET}\n", "")
    text = text.replace("    households: [friends]", "    households: [friends]\n"
                        "    client_secret: ${DSM_CLIENT_SECRET}")
    path = write(text)
    assert run_hub("plan", path).out.splitlines() == [
        "~ client ds923-dsm: client_secret (secret changed)",
        "~ client photos: client_secret (secret removed: public client)",
        "~ client cli: client_secret (secret added: confidential client)",
        "Plan: 0 to create, 3 to change, 0 to remove.",
    ]
    run_hub("apply", path)
    assert Application.objects.get(client_id="photos").client_type == Application.CLIENT_PUBLIC
    assert check_password("Nw3Kx8Qz1Lp6Vr9Ty4Hm7Bc2Fj5Gd0Sa", Application.objects.get(client_id="cli").client_secret)
    assert run_hub("plan", path).out == "No changes.\n"


def test_a_failure_halfway_changes_nothing(config_file, write, run_hub, monkeypatch):
    run_hub("apply", config_file)
    text = (CONFIG.replace("sync_interval: 1h", "sync_interval: 2h").replace("    name: Friends", "    name: Pals")
            .replace("name: A public CLI", "name: The CLI").replace("name: DSM on DS923+", "name: DSM"))
    path = write(text)
    before = snapshot()

    calls = []
    real = register_client

    def failing_register(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:  # the 4th object changed: household, nas, client 1 went through
            raise RuntimeError("database on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr("identityhub.oidc.services.register_client", failing_register)
    result = run_hub("apply", path)
    assert result.code == 1
    assert "Applied." not in result.out
    assert result.err.strip() == (
        f"{path}:45:16: client cli: RuntimeError: database on fire; nothing was changed"
    )
    assert calls == ["ds923-dsm", "cli"]
    assert snapshot() == before


def test_service_error_on_create_rolls_back_everything(config_file, run_hub, monkeypatch):
    calls = []
    real = accounts_services.declare_household

    def failing(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise ValueError("no more households today")
        return real(*args, **kwargs)

    monkeypatch.setattr("accounts.services.declare_household", failing)
    before = snapshot()
    result = run_hub("apply", config_file)
    assert result.code == 1 and "household friends: ValueError: no more households today" in result.err
    assert snapshot() == before
    assert Upstream.objects.count() == 0 and User.objects.count() == 0


def test_prune_removes_only_managed_objects_no_longer_declared(config_file, write, run_hub):
    run_hub("apply", config_file)
    admin_household = accounts_services.declare_household("admin-made", "Made in the admin")
    admin_upstream = accounts_services.declare_upstream("work", "oidc", issuer="https://login.example.org")
    bootstrap = User.objects.create_superuser("root@example.com", "pw")

    text = CONFIG.split("nas:\n")[0].replace("  - id: friends\n    name: Friends\n    members:\n"
                                             "      - {email: mum@example.com}\n"
                                             "      - {email: pal@example.com, name: Pal}\n", "")
    path = write(text)
    # Without --prune: nothing declared-away is touched (plan and apply agree).
    assert run_hub("plan", path).out == "No changes.\n"
    assert run_hub("apply", path).out == "No changes.\nApplied.\n"
    preview = run_hub("plan", path, "--prune", "--detailed-exitcode")
    assert preview.code == 2 and preview.out.endswith("Plan: 0 to create, 0 to change, 6 to remove.\n")

    result = run_hub("apply", path, "--prune")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "- household friends",
        "- person pal@example.com (deactivated, not deleted)",
        "- nas ds923",
        "- client cli",
        "- client ds923-dsm",
        "- client photos",
        "Plan: 0 to create, 0 to change, 6 to remove.",
        "Applied.",
    ]
    assert not Household.objects.filter(pk="friends").exists()
    pal = User.objects.get(email="pal@example.com")
    assert not pal.is_active  # deactivated, not deleted
    assert User.objects.get(email="mum@example.com").is_active  # still in valais
    assert not NAS.objects.exists() and not Application.objects.exists()
    # Admin-made objects are never touched.
    assert Household.objects.filter(pk=admin_household.pk).exists()
    assert Upstream.objects.filter(pk=admin_upstream.pk).exists()
    assert User.objects.get(pk=bootstrap.pk).is_active
    assert run_hub("apply", path, "--prune").out == "No changes.\nApplied.\n"

    # Declared again: the person comes back.
    assert "~ person pal@example.com: active" in run_hub("plan", config_file).out


def test_pruning_a_household_drops_its_admins_staff_flag(config_file, write, run_hub):
    text = CONFIG.replace("{email: pal@example.com, name: Pal}", "{email: pal@example.com, name: Pal, role: admin}")
    run_hub("apply", write(text))
    assert User.objects.get(email="pal@example.com").is_staff
    text = CONFIG.replace("      - {email: pal@example.com, name: Pal}\n", "").replace(
        "      - {email: mum@example.com}\n", "      - {email: mum@example.com}\n")
    text = text.replace("  - id: friends\n    name: Friends\n    members:\n      - {email: mum@example.com}\n", "")
    text = text.replace("households: [valais, friends]", "households: [valais]").replace(
        "households: [friends]", "households: [valais]")
    result = run_hub("apply", write(text), "--prune")
    assert result.code == 0, result.err
    assert not User.objects.get(email="pal@example.com").is_staff


def test_admin_made_objects_clash_unless_adopted(config_file, run_hub):
    accounts_services.declare_household("valais", "Hand made")
    register_client("photos", redirect_uris=["https://photos.example.com/callback"])
    before = snapshot()
    result = run_hub("apply", config_file)
    assert result.code == 1
    assert result.err.splitlines() == [
        f"{config_file}:10:9: household valais exists and is not managed",
        f"{config_file}:40:16: client photos exists and is not managed",
    ]
    assert snapshot() == before
    assert run_hub("plan", config_file).code == 1
    preview = run_hub("plan", config_file, "--adopt")
    assert preview.code == 0 and "~ client photos: managed (adopted)" in preview.out

    adopted = run_hub("apply", config_file, "--adopt")
    assert adopted.code == 0, adopted.err
    assert "~ household valais: managed (adopted), name, members (+ mael@example.com, + mum@example.com)" in adopted.out
    assert "~ client photos: managed (adopted), post_logout_redirect_uris, households, " \
        "client_secret (secret changed)" in adopted.out
    assert Household.objects.get(pk="valais").managed
    assert Application.objects.get(client_id="photos").profile.managed
    assert run_hub("apply", config_file).out == "No changes.\nApplied.\n"


def test_admin_made_person_clashes(config_file, run_hub):
    User.objects.create_user("mum@example.com", name="Mum")
    result = run_hub("apply", config_file)
    assert result.err.splitlines() == [f"{config_file}:14:17: person mum@example.com exists and is not managed"]
    assert run_hub("apply", config_file, "--adopt").code == 0
    assert User.objects.get(email="mum@example.com").managed


def test_apply_service_is_idempotent_and_audited(config_file):
    loaded = load_config(config_file)
    first = apply_config(loaded)
    second = apply_config(loaded)
    assert first.has_changes and not second.has_changes
    assert AuditEvent.objects.filter(kind="config_apply").count() == 2


def test_broken_file_changes_nothing(write, run_hub, secrets_env):
    path = write(CONFIG.replace("sync_interval: 1h", "sync_interval: whenever"))
    result = run_hub("apply", path)
    assert result.code == 1 and result.out == ""
    assert Upstream.objects.count() == 0


def test_no_file_and_no_hub_config(run_hub, settings):
    settings.HUB_CONFIG = None
    result = run_hub("check")
    assert result.code == 1 and "HUB_CONFIG" in result.err


def test_hub_config_is_the_default_file(config_file, run_hub, settings):
    settings.HUB_CONFIG = config_file
    assert run_hub("check").out == f"{config_file}: ok\n"
    with pytest.raises(ConfigError):
        load_config(config_file + ".missing")


# --- operators -----------------------------------------------------------------------------------
def with_operators(*emails: str) -> str:
    return CONFIG + f"operators: [{', '.join(emails)}]\n"


def flags(email: str) -> tuple[bool, bool]:
    user = User.objects.get(email=email)
    return user.is_staff, user.is_superuser


def test_operators_plan_as_one_change_and_follow_the_file(config_file, write, run_hub):
    bootstrap = User.objects.create_superuser("root@example.com", "pw")  # createsuperuser: not managed
    path = write(with_operators("Mael@Example.com"))
    plan = run_hub("plan", path)
    assert plan.code == 0, plan.err
    assert plan.out.splitlines()[3:7] == [
        "+ person mael@example.com",
        "+ person mum@example.com",
        "+ person pal@example.com",
        "~ operators: +mael@example.com",
    ]
    assert plan.out.splitlines()[-1] == "Plan: 10 to create, 1 to change, 0 to remove."
    assert run_hub("apply", path).code == 0
    assert flags("mael@example.com") == (True, True)
    assert flags("mum@example.com") == (False, False)
    assert run_hub("plan", path).out == "No changes.\n"

    # Another operator: one line, added and removed; the household admin keeps staff, loses superuser.
    path = write(with_operators("pal@example.com", "mum@example.com"))
    assert run_hub("plan", path).out.splitlines() == [
        "~ operators: +mum@example.com +pal@example.com -mael@example.com",
        "Plan: 0 to create, 1 to change, 0 to remove.",
    ]
    result = run_hub("apply", path)
    assert result.code == 0, result.err
    assert flags("mael@example.com") == (True, False)
    assert flags("pal@example.com") == (True, True)
    assert flags("mum@example.com") == (True, True)
    event = AuditEvent.objects.filter(kind="config_apply").latest("pk")
    assert event.details["changed"] == 1
    assert event.details["changes"] == ["~ operators: +mum@example.com +pal@example.com -mael@example.com"]

    # Left out: nobody from the file is an operator any more, at once; staff follows the memberships.
    assert run_hub("plan", config_file).out.splitlines() == [
        "~ operators: -mum@example.com -pal@example.com",
        "Plan: 0 to create, 1 to change, 0 to remove.",
    ]
    assert run_hub("apply", config_file).code == 0
    assert flags("pal@example.com") == (False, False)
    assert flags("mum@example.com") == (False, False)
    assert flags("mael@example.com") == (True, False)
    assert run_hub("plan", config_file).out == "No changes.\n"
    # The bootstrap superuser is no config person: never touched.
    bootstrap.refresh_from_db()
    assert bootstrap.is_superuser and bootstrap.is_staff and bootstrap.is_active


def test_an_operator_pruned_from_the_file_loses_superuser(config_file, write, run_hub):
    assert run_hub("apply", write(with_operators("pal@example.com"))).code == 0
    text = CONFIG.replace("  - id: friends\n    name: Friends\n    members:\n"
                          "      - {email: mum@example.com}\n      - {email: pal@example.com, name: Pal}\n", "")
    text = text.replace("households: [valais, friends]", "households: [valais]").replace(
        "households: [friends]", "households: [valais]")
    path = write(text)
    plan = run_hub("plan", path, "--prune")
    assert "~ operators: -pal@example.com" in plan.out.splitlines()
    assert "- person pal@example.com (deactivated, not deleted)" in plan.out.splitlines()
    assert run_hub("apply", path, "--prune").code == 0
    pal = User.objects.get(email="pal@example.com")
    assert (pal.is_active, pal.is_staff, pal.is_superuser) == (False, False, False)
    assert run_hub("plan", path, "--prune").out == "No changes.\n"


def test_adopting_a_bootstrap_superuser_shows_whether_they_stay_operator(config_file, write, run_hub):
    text = CONFIG.replace("      - {email: pal@example.com, name: Pal}\n",
                          "      - {email: pal@example.com, name: Pal}\n      - {email: root@example.com}\n")
    User.objects.create_superuser("root@example.com", "pw")
    # Adopted without being listed: the plan says they stop being an operator.
    assert "~ operators: -root@example.com" in run_hub("plan", write(text), "--adopt").out.splitlines()
    # Listed: adopted and still an operator, nothing to say about operators.
    path = write(text + "operators: [root@example.com]\n", "listed.yaml")
    plan = run_hub("plan", path, "--adopt")
    assert "~ person root@example.com: managed (adopted)" in plan.out and "operators" not in plan.out
    assert run_hub("apply", path, "--adopt").code == 0
    root = User.objects.get(email="root@example.com")
    assert root.managed and root.is_superuser and root.is_staff
    assert run_hub("plan", path).out == "No changes.\n"


def test_a_failing_set_operators_changes_nothing(config_file, write, run_hub, monkeypatch):
    run_hub("apply", config_file)
    path = write(with_operators("mum@example.com").replace("sync_interval: 1h", "sync_interval: 2h"))
    before = snapshot()

    def failing(emails):
        raise RuntimeError("no operators today")

    monkeypatch.setattr("accounts.services.set_operators", failing)
    result = run_hub("apply", path)
    assert result.code == 1
    assert result.err.strip() == f"{path}:49:12: operators: RuntimeError: no operators today; nothing was changed"
    assert snapshot() == before
