"""The training image, one per DonkeyCar generation: what build_image.sh runs.

    python -m trainer.cli image --source . --image REGISTRY/robocar/trainer --generation 5.4

Cloud Build gets the toolkit folder and cloudbuild.yaml, which builds
./Dockerfile with the generation's Python as a build argument and pushes
IMAGE:dk5.4. `gcloud builds submit --tag` cannot pass build arguments,
hence the config file and its substitutions.
"""
import os
import shlex
import shutil
import sys

from trainer import generations
from trainer.errors import UserError

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
    from trainer import cloud

    generation = generations.wanted(args.generation)
    if args.image:
        image, given = args.image, f"-t {args.image}"
    else:
        image = cloud.require("TRAINER_IMAGE", ", or pass -t IMAGE_URI")
        given = None
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "").strip() or None
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
    os.execv(gcloud, command)
