"""Is the project ready for a cloud job, before anything is paid for?
What `submit_cloud_train.sh --check` (and the movie script's) prints: every
check in one pass, one line each, OK or FIX with the command that fixes it,
and NOTE for what cannot be seen from outside.

    lines = check.run(plan, spot=False)        # [Line]; --check exits 1 on a FIX
    check.summary(lines)                       # 'all 8 checks OK ...' / '3 of 8 ...'
    check.preflight(plan, spot, creds, project, storage, warn)   # what every submit
                                               # runs first: a UserError naming the check

The checks, in the order of docs/cloud.md's one-time set-up, each through
Google's own API from the discovery documents google-api-python-client
bundles: credentials and project; the APIs (Service Usage v1); your roles
(Resource Manager v1 testIamPermissions, which answers for the caller
only); the bucket (its region against REGION, Requester Pays, your access);
the image of the generation (Artifact Registry v1); the GPU quota (Vertex
AI's own, through Service Usage v1beta1 consumerQuotaMetrics); the W&B key
secret (Secret Manager v1). The accounts jobs and builds run as (Vertex
AI's service agent; Cloud Build's, which its API names) are not the
caller, so their access is named with its defaults, not checked.
A refusal is read from Google's error.details[] reason, never its message.
"""
from dataclasses import dataclass
from urllib.parse import quote

from trainer.client import image as build
from trainer.client import vertex
from trainer.core import cloud, gcs
from trainer.core.errors import UserError, prog
from trainer.job import tracking

# What a cloud job needs enabled; what --check also wants for build_image.sh
# (Cloud Build runs as the Compute Engine default account, which exists only
# once the Compute Engine API is enabled).
JOB_APIS = ("aiplatform.googleapis.com", "storage.googleapis.com",
            "logging.googleapis.com", "artifactregistry.googleapis.com")
BUILD_APIS = ("cloudbuild.googleapis.com", "compute.googleapis.com")
SECRET_API = "secretmanager.googleapis.com"
# What the caller does (submit, follow, cancel, these checks, build_image.sh);
# the role of each: cloud.ROLES.
PERMISSIONS = ("aiplatform.customJobs.create", "aiplatform.customJobs.get",
               "aiplatform.customJobs.cancel", "logging.logEntries.list",
               "serviceusage.services.use", "serviceusage.services.get",
               "serviceusage.quotas.get", "artifactregistry.tags.get",
               "cloudbuild.builds.create")
BUCKET_PERMISSIONS = ("storage.objects.create", "storage.objects.get",
                      "storage.objects.list", "storage.objects.delete")
# Vertex AI runs custom jobs as its Custom Code Service Agent, which may by
# default use this project's buckets and images (it exists after the first job).
AGENT = "service-{number}@gcp-sa-aiplatform-cc.iam.gserviceaccount.com"
# Cloud Storage multi-regions (and dual-regions) and the regions they span.
AREAS = {"US": "us-", "EU": "europe-", "ASIA": "asia-", "NAM4": "us-central1 us-east1",
         "EUR4": "europe-north1 europe-west4", "ASIA1": "asia-northeast1 asia-northeast2"}


@dataclass
class Line:
    status: str           # OK, FIX or NOTE
    what: str
    says: str
    stops: bool = True    # a FIX a submit stops for (not: you may not check it)

    def __str__(self):
        return f"{self.status:<4} {self.what}: {self.says}"


def run(plan, spot):
    """Every check of PLAN (submit.Plan) with SPOT, in order: [Line]."""
    try:
        creds, project = cloud.credentials_and_project()
    except UserError as e:
        return [Line("FIX", "credentials and project", str(e))]
    checks = Checks(plan, spot, creds, project)
    lines = [Line("OK", "credentials and project",
                  f"project {project}, as {checks.member}")]
    for what, each in (
            ("APIs", lambda: checks.apis(JOB_APIS + BUILD_APIS + checks.secret_apis())),
            ("your roles", checks.roles), ("bucket", lambda: checks.bucket(gcs.connect)),
            ("image", checks.image), ("GPU quota", checks.quota),
            ("W&B key secret", checks.secret), ("accounts", checks.accounts)):
        try:
            lines += each()
        except UserError as e:          # no answer (the network): the next check
            lines.append(Line("FIX", what, str(e)))
    return lines


def summary(lines):
    """The last line: all OK, or how many need a fix."""
    fixes = sum(line.status == "FIX" for line in lines)
    counted = sum(line.status != "NOTE" for line in lines)
    if not fixes:
        return f"all {counted} checks OK (the NOTEs say what cannot be checked from here)"
    return (f"{fixes} of {counted} checks need a fix: run the FIX commands above, then "
            "--check again")


def preflight(plan, spot, creds, project, storage, warn):
    """The cheap checks a submit runs before it stages anything: the APIs on,
    the image's tag built, the bucket reachable. Raises a UserError naming
    the check that failed; a check this account may not make is a warning."""
    checks = Checks(plan, spot, creds, project)
    after = f"nothing was staged or sent; ./{prog()} --check checks everything"
    for line in checks.apis(JOB_APIS + checks.secret_apis()) + checks.image():
        if line.status == "FIX" and line.stops:
            raise UserError(f"project {project} is not ready: {line.what}: {line.says} "
                            f"({after})")
        if line.status == "FIX":
            warn(f"could not check {line.what}: {line.says}")
    try:
        storage.stat(f"gs://{plan.bucket}/training/")
    except UserError as e:
        raise UserError(f"project {project} is not ready: bucket gs://{plan.bucket}: {e} "
                        f"({after})") from None


class Checks:
    """The checks of one project, sharing its clients and what earlier
    checks learnt (the project's number, the APIs that are off)."""

    def __init__(self, plan, spot, creds, project):
        self.plan, self.spot, self.creds, self.project = plan, spot, creds, project
        self.number = None             # from Service Usage's answer
        self.off = set()               # APIs found disabled
        self._member = None

    @property
    def member(self):
        if self._member is None:
            self._member = cloud.account(self.creds)
        return self._member

    def agent(self):
        return AGENT.format(number=self.number or "PROJECT_NUMBER")

    def service(self, name, version):
        return cloud.service(name, version, self.creds)

    def grant(self, role):
        return (f"gcloud projects add-iam-policy-binding {self.project} "
                f"--member={self.member} --role={role}")

    def refusal(self, what, e):
        """The Line of a check Google refused, keyed on its reason."""
        if not isinstance(e, cloud.ApiError):
            return Line("FIX", what, str(e))
        if e.reason == "SERVICE_DISABLED":
            service = e.metadata.get("service", "the API")
            return Line("FIX", what, f"{service} is not enabled: gcloud services enable "
                                     f"{service} --project {self.project}")
        if e.reason == "USER_PROJECT_DENIED":
            return Line("FIX", what, "your account may not bill this project (quota "
                                     "project): " + self.grant(
                                         "roles/serviceusage.serviceUsageConsumer"))
        if e.reason == "IAM_PERMISSION_DENIED":
            permission = e.metadata.get("permission", "")
            role, title = cloud.role_for(permission)
            fix = self.grant(role) if role else f"ask for a role with {permission}"
            return Line("FIX", what, f"you lack {permission or 'a permission'}, so it "
                                     f"cannot be checked ({title or 'role'}): {fix}",
                        stops=False)
        return Line("FIX", what, str(e))

    def ask(self, what, request):
        """(REQUEST's answer, None), or (None, Google's refusal: an ApiError).
        No answer at all (the network) is raised: a submit stops there."""
        try:
            return cloud.call(request, f"checking {what}"), None
        except cloud.ApiError as e:
            return None, e

    def secret_apis(self):
        return (SECRET_API,) if self.secret_name() else ()

    def secret_name(self):
        try:
            return tracking.job_env(self.project).get("WANDB_API_KEY_SECRET")
        except UserError:
            return None

    # -- the checks, in docs/cloud.md's order --------------------------------

    def apis(self, names):
        usage = self.service("serviceusage", "v1")
        parent = f"projects/{self.project}"
        answer, error = self.ask("the APIs", usage.services().batchGet(
            parent=parent, names=[f"{parent}/services/{n}" for n in names]))
        if error:
            return [self.refusal("APIs", error)]
        states = {}
        for each in answer.get("services", []):
            states[each["name"].rsplit("/", 1)[-1]] = each.get("state")
            self.number = self.number or each.get("parent", "").rpartition("/")[2] or None
        self.off = {n for n in names if states.get(n) != "ENABLED"}
        short = ", ".join(n.split(".")[0] for n in names)
        if not self.off:
            return [Line("OK", "APIs", f"enabled: {short}")]
        off = [n for n in names if n in self.off]
        return [Line("FIX", "APIs", f"not enabled: {', '.join(off)}: gcloud services "
                                    f"enable {' '.join(off)} --project {self.project}")]

    def roles(self):
        manager = self.service("cloudresourcemanager", "v1")
        answer, error = self.ask("your roles", manager.projects().testIamPermissions(
            resource=self.project, body={"permissions": list(PERMISSIONS)}))
        if error:
            return [self.refusal("your roles", error)]
        held = set(answer.get("permissions", []))
        missing = {}
        for permission in PERMISSIONS:
            if permission not in held:
                missing.setdefault(cloud.role_for(permission), []).append(permission)
        if not missing:
            return [Line("OK", "your roles", f"{self.member} has the {len(PERMISSIONS)} "
                                             "permissions submit, -w and build use")]
        return [Line("FIX", f"your roles ({title})", f"you lack {', '.join(perms)}: "
                                                    + self.grant(role))
                for (role, title), perms in missing.items()]

    def bucket(self, connect):
        """Where the bucket is, and what you may do with its objects."""
        from google.api_core import exceptions as gexc

        name, what = self.plan.bucket, f"bucket gs://{self.plan.bucket}"
        lines = []
        try:
            with gcs.errors(f"read {what}"):
                client = connect()
                try:
                    lines += self._where(client.get_bucket(name))
                except gexc.NotFound:
                    return [Line("FIX", what, f"it does not exist: gcloud storage buckets "
                                              f"create gs://{name} --location="
                                              f"{self.plan.region} --project {self.project}")]
                except gexc.Forbidden as e:
                    if gcs.reason(e).lower() not in ("forbidden", "iam_permission_denied"):
                        raise          # the quota project, Requester Pays: gcs.errors says
                    # Storage Object Admin alone may use the objects, not read the bucket.
                    lines.append(Line("NOTE", what, "you may not read its location "
                                      "(storage.buckets.get, e.g. Storage Bucket Viewer): "
                                      f"make sure it is in or near {self.plan.region}"))
                held = set(client.bucket(name).test_iam_permissions(
                    list(BUCKET_PERMISSIONS)))
        except UserError as e:
            return lines + [Line("FIX", what, str(e))]
        lacking = [p for p in BUCKET_PERMISSIONS if p not in held]
        if lacking:
            lines.append(Line("FIX", f"{what} access", f"you lack {', '.join(lacking)}: "
                              f"gcloud storage buckets add-iam-policy-binding gs://{name} "
                              f"--member={self.member} --role=roles/storage.objectAdmin"))
        else:
            lines.append(Line("OK", f"{what} access", "you may read and write its objects"))
        return lines

    def _where(self, bucket):
        """The bucket's region against REGION, Requester Pays, its project."""
        name, region = bucket.name, self.plan.region
        what = f"bucket gs://{name}"
        location = (bucket.location or "").upper()
        lines = []
        if location.lower() == region:
            lines.append(Line("OK", what, f"in {region}, where the jobs run"))
        elif location in AREAS and any(region.startswith(r) for r in AREAS[location].split()):
            lines.append(Line("OK", what, f"in {location}, which spans {region}"))
        else:
            fix = (f"export REGION={location.lower()}" if "-" in location else
                   f"gcloud storage buckets create gs://{name}-{region} --location={region} "
                   f"--project {self.project} && export STEERING_BUCKET_NAME={name}-{region}")
            lines.append(Line("FIX", what, f"in {location or 'an unknown location'}, while "
                              f"the jobs run in {region}: every job would read and write "
                              f"across regions (slower, and egress is billed): {fix}"))
        if bucket.requester_pays:
            lines.append(Line("FIX", f"{what} billing", "Requester Pays, which a job "
                              f"cannot read: gcloud storage buckets update gs://{name} "
                              "--no-requester-pays"))
        number = str(bucket.project_number or "")
        if self.number and number and number != self.number:
            lines.append(Line("NOTE", what, f"it belongs to another project ({number}): "
                              "Vertex AI's service agent needs access to it (not "
                              "checkable from here): gcloud storage buckets add-iam-policy-"
                              f"binding gs://{name} --member=serviceAccount:{self.agent()} "
                              "--role=roles/storage.objectAdmin"))
        return lines

    def image(self):
        image = self.plan.image
        what = f"image {image}"
        place = artifact(image)
        if place is None:
            return [Line("NOTE", what, "not in Artifact Registry (REGION-docker.pkg.dev/"
                                       "PROJECT/REPOSITORY/IMAGE): its tag cannot be "
                                       "checked from here")]
        if "artifactregistry.googleapis.com" in self.off:
            return [Line("NOTE", what, "not checked: the Artifact Registry API is off")]
        registry = self.service("artifactregistry", "v1")
        tags = registry.projects().locations().repositories().packages().tags()
        _, error = self.ask(what, tags.get(name=place))
        if error is None:
            return [Line("OK", what, f"built (DonkeyCar {self.plan.generation})")]
        if getattr(error, "code", None) == 404:
            return [Line("FIX", what, f"not built: ./build_image.sh -d "
                                      f"{self.plan.generation} (10-20 minutes)")]
        return [self.refusal(what, error)]

    def quota(self):
        accelerator = self.plan.accelerator
        if not accelerator:
            return [Line("OK", "GPU quota", "none needed (-g none)")]
        gpu, count = accelerator
        metric = vertex.quota_metric(gpu, self.spot)
        what = f"GPU quota in {self.plan.region}"
        usage = self.service("serviceusage", "v1beta1")
        name = (f"projects/{self.project}/services/aiplatform.googleapis.com/"
                f"consumerQuotaMetrics/{quote(metric, safe='')}")
        answer, error = self.ask(what, usage.services().consumerQuotaMetrics().get(
            name=name, view="BASIC"))
        if error:
            return [self.refusal(what, error)]
        limit = region_limit(answer, self.plan.region)
        kind = f"{gpu}{' on Spot' if self.spot else ''}"
        short = metric.rsplit("/", 1)[-1]
        if limit is not None and (limit < 0 or limit >= count):
            allowed = "no limit" if limit < 0 else f"up to {limit}"
            return [Line("OK", what, f"{allowed} x {kind} ({short}); the job takes {count}")]
        page = vertex.quota_page(self.project, metric)
        return [Line("FIX", what, f"{limit or 0} x {kind} allowed ({short}), the job takes "
                                  f"{count}: ask for {count} in {self.plan.region} at {page} "
                                  "(or -g none, or another -g or REGION)")]

    def secret(self):
        try:
            env = tracking.job_env(self.project)
        except UserError as e:
            return [Line("FIX", "W&B key secret", str(e))]
        name = env.get("WANDB_API_KEY_SECRET")
        if not name:
            return []
        what = f"W&B key secret {name}"
        if SECRET_API in self.off:
            return [Line("NOTE", what, "not checked: the Secret Manager API is off")]
        parts = name.split("/")              # projects/P/secrets/S[/versions/V]
        project, secret = parts[1], parts[3]
        version = name if "/versions/" in name else f"{name}/versions/latest"
        secrets = self.service("secretmanager", "v1")
        answer, error = self.ask(what, secrets.projects().secrets().versions().get(
            name=version))
        lines = []
        if error is None and answer.get("state") == "ENABLED":
            lines.append(Line("OK", what, "its version is enabled"))
        elif error is None:
            lines.append(Line("FIX", what, f"its version is {answer.get('state')}: "
                              f"gcloud secrets versions enable {version.rsplit('/', 1)[-1]} "
                              f"--secret {secret} --project {project}"))
        elif getattr(error, "code", None) == 404:
            lines.append(Line("FIX", what, "no such secret: printf %s \"$WANDB_API_KEY\" | "
                              f"gcloud secrets create {secret} --data-file=- "
                              f"--project {project}"))
        else:
            lines.append(self.refusal(what, error))
        lines.append(Line("NOTE", what, f"the job reads it as Vertex AI's service agent "
                          f"{self.agent()}, which needs roles/secretmanager.secretAccessor "
                          "on it (not checkable from here): gcloud secrets add-iam-policy-"
                          f"binding {secret} --project {project} --member=serviceAccount:"
                          f"{self.agent()} --role=roles/secretmanager.secretAccessor"))
        return lines

    def accounts(self):
        lines = [Line("NOTE", "Vertex AI's service agent",
                      f"jobs run as {self.agent()}, which by default may use this "
                      "project's buckets and images (it appears with the first job)")]
        if "cloudbuild.googleapis.com" in self.off:
            return lines + [Line("NOTE", "Cloud Build's account",
                                 "not known until the Cloud Build API is enabled")]
        email = build.build_account(self.project, self.creds)
        if email is None:
            return lines
        roles = " ".join(build.BUILD_ROLES)
        lines.append(Line("NOTE", "Cloud Build's account",
                          f"builds run as {email}, which needs {roles} (not checkable from "
                          f"here): for role in {roles}; do gcloud projects "
                          f"add-iam-policy-binding {self.project} "
                          f"--member=serviceAccount:{email} --role=$role; done"))
        return lines


def artifact(image):
    """The Artifact Registry tag name of IMAGE (LOCATION-docker.pkg.dev/
    PROJECT/REPOSITORY/PACKAGE:TAG), or None for another registry."""
    host, _, rest = image.partition("/")
    path, _, tag = rest.rpartition(":")
    parts = path.split("/")
    if not host.endswith("-docker.pkg.dev") or len(parts) < 3 or not tag:
        return None
    location = host[:-len("-docker.pkg.dev")]
    project, repository, package = parts[0], parts[1], "/".join(parts[2:])
    return (f"projects/{project}/locations/{location}/repositories/{repository}/"
            f"packages/{quote(package, safe='')}/tags/{tag}")


def region_limit(metric, region):
    """The effective limit of a ConsumerQuotaMetric in REGION (its region's
    bucket, else its default one), -1 for none, None when not stated."""
    default = None
    for limit in metric.get("consumerQuotaLimits", []):
        for bucket in limit.get("quotaBuckets", []):
            dims = bucket.get("dimensions") or {}
            value = bucket.get("effectiveLimit")
            if value is None:
                continue
            if dims.get("region") == region:
                return int(value)
            if not dims:
                default = int(value)
    return default
