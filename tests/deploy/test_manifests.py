"""Compose files and Kubernetes manifests, parsed and checked for what a deployment relies on
(issue 10 items 2, 3 and 6). Docker and Kubernetes do not run here: these are the checks that can."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
HUB_IMAGE = "identityhub:latest"
APP_PACKAGES = ("identityhub", "accounts", "synology", "joining", "console")


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def compose(name: str) -> dict:
    [doc] = load(DEPLOY / name)
    return doc


def file_vars() -> list[str]:
    return re.search(r"^FILE_VARS=\(([^)]*)\)", (DEPLOY / "entrypoint.sh").read_text(), re.MULTILINE).group(1).split()


def known_env_names() -> set[str]:
    """Every variable something really reads: the hub's code, the entrypoint, the health check, the
    NAME_FILE forms, and the ${VAR}s of the example config."""
    names: set[str] = set()
    reader = re.compile(r'(?:os\.environ\.get|os\.getenv|env_flag|env_list|env_rate|os\.environ\[)\(?\s*"([A-Z][A-Z0-9_]+)"')
    for package in APP_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                names |= set(reader.findall(path.read_text(encoding="utf-8")))
    from identityhub.loopback import DEBUG_REMOTE_OVERRIDE

    names.add(DEBUG_REMOTE_OVERRIDE)
    script = (DEPLOY / "entrypoint.sh").read_text()
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)[:}]", script)) | set(re.findall(r"\bflag ([A-Z][A-Z0-9_]+)", script))
    names |= set(reader.findall((DEPLOY / "healthcheck.py").read_text()))
    names |= set(file_vars()) | {f"{name}_FILE" for name in file_vars()}
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (DEPLOY / "hub.example.yaml").read_text()))
    names.add("TZ")
    return names


def test_every_deployment_yaml_parses():
    # hub.example.yaml is the hub's own format (`${…}` inside flow mappings): tests/deploy/test_hub_check.py
    paths = [p for p in [*DEPLOY.glob("*.yaml"), *K8S.glob("*.yaml")] if p.name != "hub.example.yaml"]
    assert {p.name for p in paths} >= {"compose.yaml", "compose.nas.yaml", "kustomization.yaml", "web.yaml"}
    for path in paths:
        assert load(path), path


def test_the_known_names_are_real():
    names = known_env_names()
    assert {"HUB_ISSUER", "HUB_SECRET_KEY", "HUB_ENCRYPTION_KEY", "HUB_CONFIG", "HUB_BEHIND_PROXY", "DATABASE_URL",
            "REDIS_URL", "HUB_APPLY_ON_START", "WEB_WORKERS", "WEB_MIGRATE", "SYNO_PASSWORD_FILE"} <= names
    assert "SYNO_PASSWD" not in names and "SYNO_PASSWD_FILE" not in names


# --- compose ----------------------------------------------------------------------------------------------
def hub_services(doc: dict) -> dict[str, dict]:
    return {name: s for name, s in doc["services"].items() if s.get("image") == HUB_IMAGE}


def check_hub_service(doc: dict, name: str, service: dict, known: set[str]) -> None:
    assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
    assert service["restart"] == "unless-stopped", name
    env = service.get("environment", {})
    assert not (set(env) - known), (name, set(env) - known)
    assert env["HUB_CONFIG"] == "/etc/identityhub/hub.yaml"
    assert "./hub.yaml:/etc/identityhub/hub.yaml:ro" in service["volumes"]
    secrets = set(service["secrets"])
    assert secrets <= set(doc["secrets"]), name
    for variable, value in env.items():
        if variable.endswith("_FILE"):
            secret = variable[: -len("_FILE")]
            assert secret in file_vars(), variable  # the entrypoint reads it
            assert value == f"/run/secrets/{secret.lower()}", variable  # one name per secret
            assert secret.lower() in secrets, variable
    for secret in secrets:  # every secret mounted is read: by a NAME_FILE, or by hub.yaml's *_file keys
        assert f"{secret.upper()}_FILE" in env, (name, secret)
    for variable in ("HUB_SECRET_KEY", "HUB_ENCRYPTION_KEY", "GOOGLE_CLIENT_SECRET", "DSM_CLIENT_SECRET",
                     "SYNO_PASSWORD", "DATABASE_URL"):
        assert variable not in env, f"{name}: {variable} inline; use {variable}_FILE"
    for secret, spec in doc["secrets"].items():
        assert spec == {"file": f"./secrets/{secret}"}, secret


def test_the_full_compose_profile():
    doc = compose("compose.yaml")
    known = known_env_names()
    services = hub_services(doc)
    assert set(services) == {"web", "worker", "beat"}
    assert {"redis", "postgres"} <= set(doc["services"])
    for name, service in services.items():
        check_hub_service(doc, name, service, known)
        assert service["init"] is True  # tini: `web`, `worker` and `beat` exec their program as PID 1
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["environment"]["DATABASE_URL_FILE"] == "/run/secrets/database_url"
    assert [s["command"][0] for s in services.values()] == ["web", "worker", "beat"]
    assert services["beat"]["deploy"]["replicas"] == 1 and "scale" not in services["beat"]
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "ports" not in services["worker"] and "ports" not in services["beat"]
    for name in ("worker", "beat"):
        assert services[name]["depends_on"]["web"] == {"condition": "service_healthy"}  # web migrates first
    postgres = doc["services"]["postgres"]
    assert set(postgres["secrets"]) <= set(doc["secrets"])
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_the_nas_compose_profile():
    doc = compose("compose.nas.yaml")
    assert list(doc["services"]) == ["hub"]
    [hub] = doc["services"].values()
    check_hub_service(doc, "hub", hub, known_env_names())
    assert hub["command"] == ["all"]
    assert "init" not in hub  # the entrypoint supervises as PID 1 (docker-init may be missing on a NAS)
    assert hub["ports"] == ["127.0.0.1:8000:8000"]  # DSM's reverse proxy only
    assert hub["environment"]["HUB_BEHIND_PROXY"] == "1"
    assert "REDIS_URL" not in hub["environment"] and "DATABASE_URL" not in hub["environment"]  # SQLite, filesystem
    [var] = [v for v in hub["volumes"] if v.endswith(":/app/var")]
    assert var in {"./data:/app/var", "hub-data:/app/var"}
    assert "/app/deploy/healthcheck.py" in hub["healthcheck"]["test"] and "all" in hub["healthcheck"]["test"]
    assert hub["mem_limit"] and hub["stop_grace_period"]
    assert set(hub["secrets"]) == set(doc["secrets"]) == {
        "hub_secret_key", "hub_encryption_key", "google_client_secret", "dsm_client_secret", "syno_password"}


# --- one name per secret, and every secret file is made by the documented steps ------------------------
CREATES = r"(?:>\s*|tee\s+|cat\s*>\s*)(?:\S*/)?secrets/{name}\b"


@pytest.mark.parametrize(("compose_file", "guides"), [
    ("compose.yaml", ["deploy/compose.yaml", "docs/operations.md"]),
    ("compose.nas.yaml", ["deploy/compose.nas.yaml", "docs/synology.md"]),
])
def test_every_secret_file_compose_needs_is_created_by_the_setup_steps(compose_file, guides):
    for secret in compose(compose_file)["secrets"]:
        for guide in guides:
            text = (ROOT / guide).read_text()
            assert re.search(CREATES.format(name=re.escape(secret)), text), f"{guide} never creates secrets/{secret}"


def test_one_name_for_every_secret_in_the_examples_and_docs():
    paths = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *DEPLOY.rglob("*") ]
    offenders = [str(p.relative_to(ROOT)) for p in paths if p.is_file() and p.suffix in {".md", ".yaml", ".example", ""}
                 and "SYNO_PASSWD" in p.read_text(errors="replace")]
    assert offenders == []
    example = "\n".join(line for line in (DEPLOY / "hub.example.yaml").read_text().splitlines()
                        if not line.lstrip().startswith("#"))
    env_example = (DEPLOY / "hub.env.example").read_text()
    for variable in re.findall(r"\$\{([A-Z][A-Z0-9_]+)\}", example):  # the example's secrets
        assert re.search(rf"^#?{variable}=", env_example, re.MULTILINE), variable
        assert variable in file_vars(), variable
        for name in ("compose.yaml", "compose.nas.yaml"):
            assert variable.lower() in compose(name)["secrets"], (name, variable)
            assert f"${{{variable}}}" in (DEPLOY / name).read_text(), (name, variable)


def test_hub_env_example_names_only_real_variables():
    names = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (DEPLOY / "hub.env.example").read_text(), re.MULTILINE)
    assert not set(names) - known_env_names(), set(names) - known_env_names()
    assert {"HUB_ISSUER", "HUB_SECRET_KEY", "HUB_ENCRYPTION_KEY", "SYNO_PASSWORD", "GOOGLE_CLIENT_SECRET"} <= set(names)


# --- Kubernetes -----------------------------------------------------------------------------------------
def k8s_objects() -> list[dict]:
    kustomization = load(K8S / "kustomization.yaml")[0]
    objects = []
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
        objects += load(K8S / resource)
    return objects


def by_kind(kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == kind}


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def hub_containers() -> list[tuple[str, dict]]:
    workloads = [*by_kind("Deployment").values(), *by_kind("Job").values()]
    return [(o["metadata"]["name"], c) for o in workloads for c in pod_spec(o)["containers"]
            if c["image"] == "identityhub"]


def secret_example() -> dict:
    [secret] = load(K8S / "secret.example.yaml")
    return secret


def test_kustomization_names_one_image_and_no_secret_values():
    kustomization = load(K8S / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization" and kustomization["namespace"] == "identity-hub"
    assert [i["name"] for i in kustomization["images"]] == ["identityhub"]
    assert "secret.example.yaml" not in kustomization["resources"]  # placeholders are never applied
    assert all(o["kind"] != "Secret" for o in k8s_objects())
    names = {name for name, _ in hub_containers()}
    assert names == {"identityhub-web", "identityhub-worker", "identityhub-beat", "identityhub-migrate"}


def test_web_runs_twice_with_probes_and_a_disruption_budget():
    web = by_kind("Deployment")["identityhub-web"]
    assert web["spec"]["replicas"] == 2
    [container] = pod_spec(web)["containers"]
    assert container["args"] == ["web"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        # the kubelet's Host is the pod IP, which ALLOWED_HOSTS refuses: localhost is always allowed
        assert container[probe]["httpGet"]["httpHeaders"] == [{"name": "Host", "value": "localhost"}], probe
        assert container[probe]["httpGet"]["port"] == "http"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WEB_MIGRATE"] == "0"  # the Job migrates, once
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"]["matchLabels"] == labels
    [pdb] = by_kind("PodDisruptionBudget").values()
    assert pdb["spec"]["selector"]["matchLabels"] == labels and pdb["spec"]["minAvailable"] == 1
    for other in ("identityhub-worker", "identityhub-beat"):
        other_labels = by_kind("Deployment")[other]["spec"]["template"]["metadata"]["labels"]
        assert not all(other_labels.get(k) == v for k, v in labels.items()), other  # the PDB selects web only
    service = by_kind("Service")["identityhub-web"]
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    [ingress] = by_kind("Ingress").values()
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "identityhub-web" and backend["port"] == {"name": "http"}


def test_exactly_one_beat_recreated_never_rolled():
    beat = by_kind("Deployment")["identityhub-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec(beat)["containers"][0]["args"] == ["beat"]
    assert not by_kind("HorizontalPodAutoscaler")


def test_workers_and_the_migrate_job():
    worker = by_kind("Deployment")["identityhub-worker"]
    assert pod_spec(worker)["containers"][0]["args"][0] == "worker"
    assert pod_spec(worker)["terminationGracePeriodSeconds"] >= 60
    [job] = by_kind("Job").values()
    assert pod_spec(job)["containers"][0]["args"] == ["manage", "migrate", "--noinput"]
    assert pod_spec(job)["restartPolicy"] in {"OnFailure", "Never"}


def test_every_secret_comes_from_the_secret_object_and_exists_in_the_example():
    example = secret_example()
    assert example["kind"] == "Secret"
    keys = example["stringData"]
    for key, value in keys.items():
        assert key == "redis_url" or "REPLACE" in value, key  # placeholders, clearly marked
    known = known_env_names()
    secret_names = {name.upper() for name in keys}
    for workload, container in hub_containers():
        for env in container["env"]:
            assert env["name"] in known, (workload, env["name"])
            if env["name"] in secret_names:
                ref = env["valueFrom"]["secretKeyRef"]
                assert "value" not in env, (workload, env["name"])
                assert ref["name"] == example["metadata"]["name"], (workload, env["name"])
                assert ref["key"] == env["name"].lower(), (workload, env["name"])  # one name per secret
                assert ref["key"] in keys, (workload, env["name"])
            elif "valueFrom" in env:
                pytest.fail(f"{workload}: {env['name']} from somewhere unexpected")
        names = {e["name"] for e in container["env"]}
        assert {"HUB_SECRET_KEY", "HUB_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL", "HUB_CONFIG"} <= names, workload


def test_every_pod_is_locked_down_and_mounts_the_config_map():
    config_maps = by_kind("ConfigMap")
    for workload in [*by_kind("Deployment").values(), *by_kind("Job").values()]:
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
        if spec["containers"][0]["image"] == "identityhub":
            [config] = [v for v in spec["volumes"] if "configMap" in v]
            assert config["configMap"]["name"] in config_maps
            mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
            assert {"/etc/identityhub", "/app/var", "/tmp", "/home/hub"} <= mounts


def test_the_config_map_is_a_valid_hub_config(tmp_path, monkeypatch, settings):
    from tests.config.conftest import call_hub

    [config_map] = by_kind("ConfigMap").values()
    path = tmp_path / "hub.yaml"
    path.write_text(config_map["data"]["hub.yaml"])
    for variable in re.findall(r"\$\{([A-Z][A-Z0-9_]+)\}", config_map["data"]["hub.yaml"]):
        assert variable.lower() in secret_example()["stringData"], variable
        monkeypatch.setenv(variable, "hJ7kQ2xV9mN4pR8tW3zB6cF1gL5sD0aY")
    settings.HUB_ISSUER_FROM_ENV = False
    result = call_hub("check", str(path))
    assert result.code == 0, result.err
