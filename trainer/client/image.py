"""The training image, one per DonkeyCar generation: what build_image.sh runs.

    python -m trainer.cli image --source . -i REGISTRY/robocar/trainer -d 5.4

Cloud Build gets the toolkit folder and cloudbuild.yaml, which builds
./Dockerfile with the generation's Python as a build argument and pushes
IMAGE:dk5.4. `gcloud builds submit --tag` cannot pass build arguments,
hence the config file and its substitutions.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys

from trainer.core import cloud, generations, settings
from trainer.core.errors import UserError

CONFIG = "cloudbuild.yaml"


def build_command(source, image, generation, project=None, given=None):
    """(the tagged image, the gcloud command that builds and pushes it)."""
    tagged = generations.image_for(image, generation, given=given)
    python = generations.GENERATIONS[generation].python
    substitutions = {"_IMAGE": tagged, "_PYTHON": python, "_DONKEYCAR": generation}
    command = ["gcloud", "builds", "submit", source,
               "--config", os.path.join(source, CONFIG),
               "--substitutions", ",".join(f"{k}={v}" for k, v in substitutions.items())]
    if project:
        command += ["--project", project]
    return tagged, command


def build(args, say=print):
    """Run (or with args.dry_run, print) the Cloud Build of one image."""
    generation = generations.wanted(args.generation)
    if args.image:
        image, given = args.image, f"-i {args.image}"
    else:
        image = settings.trainer_image(", or pass -i IMAGE_URI")
        given = None
    project = settings.project()
    tagged, command = build_command(args.source, image, generation, project, given)
    if args.dry_run:
        say(shlex.join(command))
        return 0
    gcloud = shutil.which("gcloud")
    if not gcloud:
        raise UserError("gcloud is not installed: install the Google Cloud SDK "
                        "(https://cloud.google.com/sdk/docs/install)")
    say(f"building {tagged}: DonkeyCar {generation} on Python "
        f"{generations.GENERATIONS[generation].python}, with Cloud Build (10-20 minutes)")
    sys.stdout.flush()
    run_build([gcloud, *command[1:]], project)
    return 0


# Since 2024, Cloud Build in a new organisation runs as the Compute Engine
# default service account, which starts with no roles: the build cannot read
# its own uploaded source, push the image or write its log. Which account a
# project's builds run as is Cloud Build's to say (build_account()); the
# Compute Engine one exists only once the Compute Engine API is enabled.
BUILD_ROLES = ("roles/storage.objectViewer", "roles/artifactregistry.writer",
               "roles/logging.logWriter")
_DENIED = re.compile(r"does not have (storage\.objects\.(list|get)|artifactregistry\.\S+|"
                     r"logging\.\S+) access|PERMISSION_DENIED|caller does not have permission",
                     re.IGNORECASE)


def run_build(command, project):
    """Run gcloud, its output passed through; a refused build is one line
    naming Cloud Build's service account and the roles it lacks."""
    proc = subprocess.Popen(command, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    last, denied = "", None
    for line in proc.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        if line.strip():
            last = line.strip()
        if _DENIED.search(line):
            denied = denied or line.strip()
    if proc.wait() == 0:
        return
    if denied:
        account = build_account(project) if project else None
        account = account or ("Cloud Build's default service account (./submit_cloud_"
                              "train.sh --check names it)")
        raise UserError(f"Cloud Build was refused ({denied[:120]}): grant its service "
                        f"account {account} the roles {', '.join(BUILD_ROLES)} in project "
                        f"{project or 'PROJECT'} (docs/cloud.md: one-time set-up)")
    raise UserError(f"the Cloud Build failed ({last[:160] or 'no message'}): see its "
                    "log above")


def build_account(project, creds=None):
    """The service account PROJECT's builds run as, from Cloud Build v1
    projects.locations.getDefaultServiceAccount; None when it cannot be read
    (no credentials, the API off, no permission)."""
    try:
        if creds is None and not settings.credentials_disabled():
            creds, _ = cloud.credentials_and_project(required=False)
        service = cloud.service("cloudbuild", "v1", creds)
        answer = cloud.call(service.projects().locations().getDefaultServiceAccount(
            name=f"projects/{project}/locations/global/defaultServiceAccount"),
            "reading Cloud Build's default service account", retries=1)
    except UserError:
        return None
    return answer.get("serviceAccountEmail", "").rpartition("/")[2] or None
