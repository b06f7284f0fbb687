"""A Google Cloud project as the toolkit's checks see it, for tests only:
the few methods `--check` and a submit's preflight call, of Service Usage
(v1 services.batchGet, v1beta1 consumerQuotaMetrics.get), Resource Manager
(v1 projects.testIamPermissions), Artifact Registry (v1 tags.get), Cloud
Build (v1 getDefaultServiceAccount) and Secret Manager (v1 versions.get).

    project = GoogleProject()                 # all is well: the defaults
    project.disabled.add("cloudbuild.googleapis.com")
    project.denied.add("secretmanager.versions.get")
    project.quota[metric] = 0                  # no GPU quota in REGION
    project.tags.discard("dk5.4")              # that image was never built
    code, body = project.answer("GET", raw_path, query, body)   # None: not ours

Each method is routed by the flatPath of the real discovery document that
google-api-python-client bundles; request bodies and every answer are
checked against that document's schemas, so the stand-in cannot drift from
what Google serves. Refusals have Google's shape (error.code, .status,
.message, and .details[] with an ErrorInfo whose reason and metadata the
toolkit reads): 403 SERVICE_DISABLED with its activation URL, 403
IAM_PERMISSION_DENIED naming the permission, 404 NOT_FOUND. The Vertex
stand-in (vertex_standin.py) serves this project beside its jobs, and asks
it whether a job may be created (the API, the permission, the GPU quota:
429 RESOURCE_EXHAUSTED).
"""
import re
from urllib.parse import quote, unquote

from discovery_schema import check

from trainer.core.cloud import discovery_document

PROJECT, NUMBER, REGION = "robocar-test", "123456789012", "europe-west1"
TITLES = {"aiplatform.googleapis.com": "Vertex AI API",
          "storage.googleapis.com": "Cloud Storage API",
          "logging.googleapis.com": "Cloud Logging API",
          "artifactregistry.googleapis.com": "Artifact Registry API",
          "cloudbuild.googleapis.com": "Cloud Build API",
          "secretmanager.googleapis.com": "Secret Manager API",
          "compute.googleapis.com": "Compute Engine API",
          "serviceusage.googleapis.com": "Service Usage API",
          "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API"}
# Vertex AI's quota metric of each GPU for custom training, its own (not
# Compute Engine's), per region; Spot VMs count against the preemptible one
# (https://cloud.google.com/vertex-ai/docs/quotas).
GPU_QUOTAS = {"NVIDIA_TESLA_T4": "nvidia_t4", "NVIDIA_TESLA_V100": "nvidia_v100",
              "NVIDIA_TESLA_P100": "nvidia_p100", "NVIDIA_TESLA_P4": "nvidia_p4",
              "NVIDIA_L4": "nvidia_l4", "NVIDIA_TESLA_A100": "nvidia_a100",
              "NVIDIA_A100_80GB": "nvidia_a100_80gb"}


def gpu_quota_metric(gpu, spot=False):
    kind = "preemptible_" if spot else ""
    return f"aiplatform.googleapis.com/custom_model_training_{kind}{GPU_QUOTAS[gpu]}_gpus"


# (API, version, method id, handler, the permission the caller needs)
METHODS = [
    ("serviceusage", "v1", "services.batchGet", "batch_get", "serviceusage.services.get"),
    ("serviceusage", "v1beta1", "services.consumerQuotaMetrics.get", "quota_metric",
     "serviceusage.quotas.get"),
    ("cloudresourcemanager", "v1", "projects.testIamPermissions", "test_permissions", None),
    ("artifactregistry", "v1", "projects.locations.repositories.packages.tags.get", "tag",
     "artifactregistry.tags.get"),
    ("cloudbuild", "v1", "projects.locations.getDefaultServiceAccount", "default_account",
     "cloudbuild.builds.get"),
    ("secretmanager", "v1", "projects.secrets.versions.get", "secret_version",
     "secretmanager.versions.get"),
]
# What googleapiclient adds to every request besides the method's parameters.
STANDARD = {"alt", "fields", "key", "prettyPrint", "quotaUser", "$.xgafv", "access_token",
            "callback", "oauth_token", "upload_protocol", "uploadType"}


def error(code, status, message, reason=None, domain=None, metadata=None, help_url=None):
    """A Google error body: error.code/.status/.message, and details[]."""
    err = {"code": code, "message": message, "status": status}
    details = []
    if reason:
        details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                        "domain": domain or "googleapis.com", "metadata": metadata or {}})
    if help_url:
        details.append({"@type": "type.googleapis.com/google.rpc.Help", "links": [
            {"description": "Google developers console API activation", "url": help_url}]})
    if details:
        err["details"] = details
    return {"error": err}


def service_disabled(service, number=NUMBER):
    url = f"https://console.developers.google.com/apis/api/{service}/overview?project={number}"
    title = TITLES.get(service, service)
    return 403, error(
        403, "PERMISSION_DENIED",
        f"{title} has not been used in project {number} before or it is disabled. Enable "
        f"it by visiting {url} then retry. If you enabled this API recently, wait a few "
        "minutes for the action to propagate to our systems and retry.",
        "SERVICE_DISABLED", "googleapis.com",
        {"service": service, "consumer": f"projects/{number}", "activationUrl": url,
         "serviceTitle": title, "containerInfo": number}, url)


def permission_denied(permission, resource):
    service = permission.split(".")[0] + ".googleapis.com"
    return 403, error(403, "PERMISSION_DENIED",
                      f"Permission '{permission}' denied on resource '{resource}' (or it "
                      "may not exist).", "IAM_PERMISSION_DENIED", service,
                      {"permission": permission, "resource": resource})


def not_found(message):
    return 404, error(404, "NOT_FOUND", message)


class GoogleProject:
    """One project, all well unless a test says otherwise."""

    def __init__(self, project=PROJECT, number=NUMBER, region=REGION):
        self.project, self.number, self.region = project, number, region
        self.disabled = set()          # services not enabled, e.g. "compute.googleapis.com"
        self.denied = set()            # permissions the caller lacks
        self.quota = {}                # Vertex AI quota metric -> limit in REGION (default 4)
        # Artifact Registry: (location, repository, package) -> its tags
        self.images = {("europe-west1", "robocar", "trainer"): {"dk5.3", "dk5.4"}}
        self.secrets = {"wandb-api-key": "ENABLED"}      # secret id -> latest version's state
        self.build_account = f"{number}-compute@developer.gserviceaccount.com"
        self.requests = []
        self.problems = []             # the stand-in's own schema failures (tests assert [])
        self._routes = [self._route(*m) for m in METHODS]

    @property
    def tags(self):
        """The tags of the default image (TRAINER_IMAGE of vertex_standin)."""
        return self.images[("europe-west1", "robocar", "trainer")]

    def quota_of(self, metric):
        return self.quota.get(metric, 4)

    # -- routing ------------------------------------------------------------

    def _route(self, api, version, method_id, handler, permission):
        doc = discovery_document(api, version)
        node = doc
        *resources, method = method_id.split(".")
        for name in resources:
            node = node["resources"][name]
        spec = node["methods"][method]
        pattern = "([^/]+)".join(re.escape(part) for part in
                                 re.split(r"\{\+?[^}]+\}", "/" + spec["flatPath"]))
        return dict(api=api, doc=doc, spec=spec, http=spec["httpMethod"],
                    regex=re.compile("^" + pattern + "$"), handler=handler,
                    permission=permission, service=f"{api}.googleapis.com")

    def answer(self, method, raw_path, query, body):
        """(code, payload) for a request this project serves, else None."""
        for route in self._routes:
            m = route["regex"].match(raw_path)
            if not m or route["http"] != method:
                continue
            self.requests.append((route["api"], route["spec"]["id"], raw_path, query, body))
            unknown = set(query) - set(route["spec"].get("parameters", {})) - STANDARD
            if unknown:
                return 400, error(400, "INVALID_ARGUMENT",
                                  f"unknown parameters {sorted(unknown)}")
            request_schema = route["spec"].get("request", {}).get("$ref")
            if request_schema:
                problems = check(route["doc"], request_schema, body)
                if problems:
                    return 400, error(400, "INVALID_ARGUMENT", "; ".join(problems))
            refused = self.refuse(route["service"], route["permission"],
                                  unquote(raw_path.split("/", 2)[2]))
            if refused:
                return refused
            code, payload = getattr(self, route["handler"])(
                [unquote(g) for g in m.groups()], query, body)
            response_schema = route["spec"].get("response", {}).get("$ref")
            if code == 200 and response_schema:
                problems = check(route["doc"], response_schema, payload, response=True)
                if problems:
                    self.problems += problems
                    return 500, error(500, "INTERNAL", "; ".join(problems))
            return code, payload
        return None

    def refuse(self, service, permission, resource):
        """What Google answers before the method runs: the API off in this
        (the quota) project, or the caller without the permission; else None."""
        if service in self.disabled:
            return service_disabled(service, self.number)
        if permission and permission in self.denied:
            return permission_denied(permission, resource)
        return None

    # -- the methods --------------------------------------------------------

    def batch_get(self, ids, query, body):
        services = []
        for name in query.get("names", []):
            service = name.rsplit("/", 1)[-1]
            services.append({
                "name": f"projects/{self.number}/services/{service}",
                "parent": f"projects/{self.number}",
                "state": "DISABLED" if service in self.disabled else "ENABLED",
                "config": {"name": service, "title": TITLES.get(service, service)}})
        return 200, {"services": services}

    def quota_metric(self, ids, query, body):
        metric = ids[3]
        if not re.match(r"^aiplatform\.googleapis\.com/custom_model_training_\w+$", metric):
            return not_found(f"Metric {metric} not found.")
        name = (f"projects/{self.number}/services/aiplatform.googleapis.com/"
                f"consumerQuotaMetrics/{quote(metric, safe='')}")
        unit = "1/{project}/{region}"
        return 200, {
            "name": name, "metric": metric, "unit": unit,
            "displayName": metric.rsplit("/", 1)[-1].replace("_", " ").capitalize(),
            "consumerQuotaLimits": [{
                "name": f"{name}/limits/%2Fproject%2Fregion", "metric": metric,
                "unit": unit, "isPrecise": True,
                "quotaBuckets": [
                    {"effectiveLimit": "0", "defaultLimit": "0"},
                    {"effectiveLimit": str(self.quota_of(metric)), "defaultLimit": "0",
                     "dimensions": {"region": self.region}}]}]}

    def test_permissions(self, ids, query, body):
        held = [p for p in body.get("permissions", []) if p not in self.denied]
        return 200, ({"permissions": held} if held else {})   # proto3 JSON omits []

    def tag(self, ids, query, body):
        _, location, repository, package, tag = ids
        name = (f"projects/{ids[0]}/locations/{location}/repositories/{repository}/"
                f"packages/{quote(package, safe='')}/tags/{tag}")
        if tag not in self.images.get((location, repository, package), ()):
            return not_found("Requested entity was not found.")
        return 200, {"name": name, "version": name.rsplit("/tags/", 1)[0]
                     + "/versions/sha256:" + "0" * 64}

    def default_account(self, ids, query, body):
        return 200, {"name": f"projects/{ids[0]}/locations/{ids[1]}/defaultServiceAccount",
                     "serviceAccountEmail": f"projects/{ids[0]}/serviceAccounts/"
                                            f"{self.build_account}"}

    def secret_version(self, ids, query, body):
        project, secret, version = ids
        state = self.secrets.get(secret)
        if state is None:
            return not_found(f"Secret [projects/{self.number}/secrets/{secret}] not found or "
                             "has no versions.")
        return 200, {"name": f"projects/{self.number}/secrets/{secret}/versions/1",
                     "state": state, "createTime": "2026-01-01T00:00:00.000000Z"}

