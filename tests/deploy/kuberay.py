"""Strict models of the KubeRay custom resources, written from the CRDs of KubeRay operator v1.7.0
(ray-operator/config/crd/bases/ray.io_{rayclusters,rayservices,rayjobs}.yaml, API version ray.io/v1).

Every KubeRay field is listed, so a misspelt or unknown key is an error (the API server would prune it
silently). Embedded Kubernetes types (pod templates, services, env vars, resources) are kept as mappings:
tests/deploy/test_k8s.py validates the pod templates with Kubernetes' own schemas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KUBERAY_VERSION = "v1.7.0"


def int32(default: Any = None) -> Any:
    """A Kubernetes int32 field (``...`` for a required one)."""
    return Field(default, ge=-(2**31), le=2**31 - 1)


K8sObject = dict[str, Any]  # a Kubernetes core type, checked elsewhere or by the API server


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectMeta(_Strict):
    name: str = Field(description="metadata.name")
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class AuthOptions(_Strict):
    enableK8sTokenAuth: bool | None = None
    mode: Literal["disabled", "token"] | None = None
    secretName: str | None = None


class AutoscalerOptions(_Strict):
    args: list[str] | None = None
    command: list[str] | None = None
    env: list[K8sObject] | None = None
    envFrom: list[K8sObject] | None = None
    idleTimeoutSeconds: int | None = int32()
    image: str | None = None
    imagePullPolicy: str | None = None
    resources: K8sObject | None = None
    securityContext: K8sObject | None = None
    upscalingMode: Literal["Default", "Aggressive", "Conservative"] | None = None
    version: Literal["v1", "v2"] | None = None
    volumeMounts: list[K8sObject] | None = None


class IngressOptions(_Strict):
    host: str | None = None
    path: str | None = None
    pathType: Literal["Exact", "Prefix", "ImplementationSpecific"] | None = None
    tls: list[K8sObject] | None = None


class HeadGroupSpec(_Strict):
    enableIngress: bool | None = None
    headService: K8sObject | None = None
    ingressOptions: IngressOptions | None = None
    labels: dict[str, str] | None = None
    rayStartParams: dict[str, str] | None = None
    resources: dict[str, str] | None = None
    serviceType: str | None = None
    template: K8sObject


class ScaleStrategy(_Strict):
    workersToDelete: list[str] | None = None


class WorkerGroupSpec(_Strict):
    groupName: str
    idleTimeoutSeconds: int | None = int32()
    labels: dict[str, str] | None = None
    maxReplicas: int = int32(...)
    minReplicas: int = int32(...)
    numOfHosts: int | None = int32()
    priority: int | None = int32()
    rayStartParams: dict[str, str] | None = None
    replicas: int | None = int32()
    resources: dict[str, str] | None = None
    scaleStrategy: ScaleStrategy | None = None
    suspend: bool | None = None
    template: K8sObject


class RayClusterSpec(_Strict):
    authOptions: AuthOptions | None = None
    autoscalerOptions: AutoscalerOptions | None = None
    enableInTreeAutoscaling: bool | None = None
    gcsFaultToleranceOptions: K8sObject | None = None
    headGroupSpec: HeadGroupSpec
    headServiceAnnotations: dict[str, str] | None = None
    historyServerOptions: K8sObject | None = None
    managedBy: str | None = None
    networkPolicy: K8sObject | None = None
    rayVersion: str | None = None
    suspend: bool | None = None
    tlsOptions: K8sObject | None = None
    upgradeStrategy: K8sObject | None = None
    workerGroupSpecs: list[WorkerGroupSpec] | None = None


class RayCluster(_Strict):
    apiVersion: Literal["ray.io/v1"]
    kind: Literal["RayCluster"]
    metadata: ObjectMeta
    spec: RayClusterSpec


class RayServiceSpec(_Strict):
    deploymentUnhealthySecondThreshold: int | None = int32()
    excludeHeadPodFromServeSvc: bool | None = None
    managedBy: str | None = None
    rayClusterConfig: RayClusterSpec
    rayClusterDeletionDelaySeconds: int | None = Field(None, ge=0, le=2**31 - 1)
    serveConfigV2: str | None = None
    serveService: K8sObject | None = None
    serviceUnhealthySecondThreshold: int | None = int32()
    suspend: bool | None = None
    upgradeStrategy: K8sObject | None = None


class RayService(_Strict):
    apiVersion: Literal["ray.io/v1"]
    kind: Literal["RayService"]
    metadata: ObjectMeta
    spec: RayServiceSpec


class SubmitterConfig(_Strict):
    backoffLimit: int | None = int32()


class RayJobSpec(_Strict):
    activeDeadlineSeconds: int | None = int32()
    backoffLimit: int | None = int32()
    clusterSelector: dict[str, str] | None = None
    deletionStrategy: K8sObject | None = None
    entrypoint: str | None = None
    entrypointNumCpus: float | None = None
    entrypointNumGpus: float | None = None
    entrypointResources: str | None = None
    jobId: str | None = None
    managedBy: str | None = None
    metadata: dict[str, str] | None = None
    preRunningDeadlineSeconds: int | None = Field(None, ge=1, le=2**31 - 1)
    rayClusterSpec: RayClusterSpec | None = None
    runtimeEnvYAML: str | None = None
    shutdownAfterJobFinishes: bool | None = None
    submissionMode: Literal["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"] | None = None
    submitterConfig: SubmitterConfig | None = None
    submitterPodTemplate: K8sObject | None = None
    suspend: bool | None = None
    ttlSecondsAfterFinished: int | None = int32()


class RayJob(_Strict):
    apiVersion: Literal["ray.io/v1"]
    kind: Literal["RayJob"]
    metadata: ObjectMeta
    spec: RayJobSpec


MODELS: dict[str, type[_Strict]] = {"RayCluster": RayCluster, "RayService": RayService, "RayJob": RayJob}


def cluster_specs(resource: _Strict) -> list[RayClusterSpec]:
    """The Ray cluster specs a KubeRay resource holds (none for a RayJob that selects a cluster)."""
    spec = resource.spec
    found = [
        s
        for s in (spec, getattr(spec, "rayClusterConfig", None), getattr(spec, "rayClusterSpec", None))
        if isinstance(s, RayClusterSpec)
    ]
    return found


def pod_templates(spec: RayClusterSpec) -> dict[str, K8sObject]:
    """Each group's pod template by group name (``head`` for the head group)."""
    templates = {"head": spec.headGroupSpec.template}
    templates.update({g.groupName: g.template for g in spec.workerGroupSpecs or []})
    return templates
