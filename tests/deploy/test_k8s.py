"""deploy/k8s, checked with no cluster: Kubernetes objects and KubeRay pod templates against Kubernetes'
schemas (kubernetes-validate), KubeRay fields against the v1.7.0 CRDs (tests/deploy/kuberay.py), the
RayService's Serve config against Ray's ServeDeploySchema, and secrets only referenced, never written."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from tests.deploy import kuberay
from tests.deploy.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.33.0"  # the Kubernetes API the manifests target (kubernetes-validate ships its schemas)
NOT_APPLIED = {"kustomization.yaml", "automl.yaml", "secrets.example.yaml"}


def _docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(kustomization) -> list[dict]:
    return [doc for name in kustomization["resources"] for doc in _docs(K8S / name)]


@pytest.fixture(scope="module")
def ray_resources(objects) -> dict[str, kuberay._Strict]:
    return {
        o["metadata"]["name"]: kuberay.MODELS[o["kind"]].model_validate(o)
        for o in objects
        if o["apiVersion"].startswith("ray.io/")
    }


def _pod_specs(objects):
    """(where, pod spec) for every pod the manifests create: Deployments and each KubeRay group."""
    for o in objects:
        if o["kind"] == "Deployment":
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]
        elif o["apiVersion"].startswith("ray.io/"):
            resource = kuberay.MODELS[o["kind"]].model_validate(o)
            for spec in kuberay.cluster_specs(resource):
                for group, template in kuberay.pod_templates(spec).items():
                    yield f"{o['metadata']['name']}/{group}", template["spec"]


def test_kustomization_lists_every_manifest(kustomization):
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - NOT_APPLIED
    assert listed == on_disk
    assert kustomization["namespace"] == "automl"
    for generator in kustomization["configMapGenerator"]:
        assert all((K8S / f).is_file() for f in generator["files"])


def test_plain_kubernetes_objects_match_the_kubernetes_schemas(objects):
    plain = [o for o in objects if not o["apiVersion"].startswith("ray.io/")]
    assert {o["kind"] for o in plain} >= {"Namespace", "Deployment", "Service", "PersistentVolumeClaim"}
    for o in plain + _docs(K8S / "secrets.example.yaml"):
        kubernetes_validate.validate(o, K8S_VERSION, strict=True)


def test_plain_validation_is_strict():
    bad = _docs(K8S / "redis.yaml")[0]
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy "] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_kuberay_resources_match_the_crd_model(ray_resources):
    kinds = sorted(type(r).__name__ for r in ray_resources.values())
    assert kinds == ["RayCluster", "RayJob", "RayService"]


def test_kuberay_model_rejects_an_unknown_field():
    raw = _docs(K8S / "raycluster.yaml")[0]
    raw["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(ValueError, match="maxReplica"):
        kuberay.RayCluster.model_validate(raw)


def test_kuberay_pod_templates_are_kubernetes_pod_template_specs(ray_resources):
    checked = 0
    for name, resource in ray_resources.items():
        for spec in kuberay.cluster_specs(resource):
            for group, template in kuberay.pod_templates(spec).items():
                wrapped = {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": f"{name}-{group}"},
                    "template": template,
                }
                kubernetes_validate.validate(wrapped, K8S_VERSION, strict=True)
                checked += 1
    assert checked == 9  # head, cpu and gpu groups of three clusters


def test_ray_clusters_have_cpu_and_gpu_groups_token_auth_and_the_locked_ray(
    ray_resources, locked_ray_version
):
    for name, resource in ray_resources.items():
        for spec in kuberay.cluster_specs(resource):
            assert spec.rayVersion == locked_ray_version, name
            assert spec.enableInTreeAutoscaling, name
            assert spec.authOptions.mode == "token" and spec.authOptions.secretName, name
            groups = {g.groupName: g for g in spec.workerGroupSpecs}
            gpu_limits = groups["gpu"].template["spec"]["containers"][0]["resources"]["limits"]
            assert gpu_limits["nvidia.com/gpu"] == 1, name
            assert all(g.minReplicas <= g.maxReplicas for g in groups.values()), name


def test_rayservice_runs_serve_config_yamls_application_autoscaled_10_to_100(ray_resources):
    from ray.serve.schema import ServeDeploySchema

    from app.serve_config import ServeConfig

    served = ServeDeploySchema.model_validate(
        yaml.safe_load(ray_resources["automl-serve"].spec.serveConfigV2)
    )
    local = ServeDeploySchema.model_validate(yaml.safe_load((ROOT / "serve_config.yaml").read_text()))
    (app,), (local_app,) = served.applications, local.applications
    assert app.import_path == local_app.import_path
    assert set(app.args) == set(local_app.args)
    ServeConfig.model_validate(app.args)  # the builder's own argument model accepts them
    assert [d.name for d in app.deployments] == [d.name for d in local_app.deployments]
    scaling = app.deployments[0].autoscaling_config
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (10, 100)
    assert served.http_options.host == "0.0.0.0"  # the pod's address, reached through the Serve service


def test_rayjob_runs_a_job_entrypoint_with_the_mounted_config(ray_resources):
    from app.config import AppConfig

    job = ray_resources["automl-fit"].spec
    script = re.search(r"python (\S+)", job.entrypoint).group(1)
    assert (ROOT / script.removeprefix("/home/ray/automl/")).is_file()
    assert "--config /etc/automl/automl.yaml" in job.entrypoint
    assert job.shutdownAfterJobFinishes
    AppConfig.from_yaml(K8S / "automl.yaml", env={})


def _secret_key_refs(node):
    """(name, key) of every secretKeyRef below ``node``."""
    if isinstance(node, dict):
        if "secretKeyRef" in node:
            yield node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]
        for value in node.values():
            yield from _secret_key_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _secret_key_refs(value)


def test_secrets_are_referenced_never_written(objects, ray_resources):
    """Every Secret the pods read is one secrets.example.yaml documents; none is applied with values."""
    assert not [o for o in objects if o["kind"] == "Secret"]
    examples = _docs(K8S / "secrets.example.yaml")
    documented = {d["metadata"]["name"]: set(d["stringData"]) for d in examples}
    assert all(v == "CHANGE-ME" for d in examples for v in d["stringData"].values())
    refs = list(_secret_key_refs(objects))
    assert len(set(refs)) == 5, set(refs)
    for name, key in refs:
        assert key in documented.get(name, set()), f"secret {name}/{key} is not in secrets.example.yaml"
    for resource in ray_resources.values():
        for spec in kuberay.cluster_specs(resource):
            assert "auth_token" in documented[spec.authOptions.secretName]


def test_env_references_are_defined_before_use(objects):
    """Kubernetes expands $(VAR) only from variables defined earlier in the same container."""
    for where, pod in _pod_specs(objects):
        for container in pod["containers"]:
            defined: set[str] = set()
            for var in container.get("env", []):
                for used in re.findall(r"\$\((\w+)\)", var.get("value", "")):
                    assert used in defined, f"{where}: {var['name']} uses $({used}) before it is defined"
                defined.add(var["name"])
            for arg in container.get("args", []) + container.get("command", []):
                for used in re.findall(r"\$\((\w+)\)", arg):
                    assert used in defined, f"{where}: argument uses $({used}), not in env"


def test_every_pod_runs_as_non_root(objects):
    for where, pod in _pod_specs(objects):
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
