"""The image of a team's own DonkeyCar (a fork, a branch, a checkout): the
stock image of its generation with only DonkeyCar replaced, a layer of a few
MB (Dockerfile.donkeycar), tagged with the DonkeyCar's content so it cannot
be mistaken for the stock one: dk5.3-9f2c4a1b0e3d. `make image
DONKEYCAR_SOURCE=SPEC` (lib/local_image.sh) and `build_image.sh
--donkeycar-source SPEC` (image.py) build it from the context staged here:

    staged = stage("git+https://github.com/team/donkeycar@race", "5.3", ROOT, into)
    staged.content     # the sha256 the tag carries; None for a PyPI release's content

    python -m trainer.client.forkimage -d 5.3 --into DIR SPEC   # prints its tag and content

The context (INTO): the wheel pip builds from SPEC on this machine (where
git, the network and the checkout are), the generation's lock with that
wheel in place of PyPI's DonkeyCar (donkeysource.derive_lock), where it came
from (origin.json, PEP 610's record, as pip writes it), the Dockerfile and
Cloud Build's config.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass

from trainer.core import donkeysource, generations
from trainer.core.errors import UserError, run_main

DOCKERFILE = "Dockerfile.donkeycar"
CONFIG = "cloudbuild.donkeycar.yaml"
# Where the wheel and its lock are in the image while it is built.
IN_IMAGE = "/tmp/donkeycar"


@dataclass(frozen=True)
class Staged:
    folder: str          # the build context
    version: str         # the wheel's DonkeyCar version
    content: str         # its content (donkeysource.py); None when a PyPI release's
    described: str       # in words, for the build's report


def pip(*args, what):
    """python -m pip ARGS, quietly; a failure is one line with pip's last."""
    r = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        lines = [ln.strip() for ln in (r.stderr + r.stdout).splitlines()
                 if ln.strip() and not ln.startswith("WARNING: Location")]
        raise UserError(f"pip could not {what} ({lines[-1][:200] if lines else 'no message'}"
                        "): check DONKEYCAR_SOURCE, and that it installs with pip here")
    return r


def resolve(wanted, work):
    """(where WANTED comes from as pip records it, the requirement to build):
    for a URL, pip's own record (its report), a git branch pinned to the
    commit it is now; a version comes from the package index, recorded as
    nothing."""
    if " @ " not in wanted:
        return {}, wanted
    url = wanted.split(" @ ", 1)[1]
    if url.startswith("file://"):        # a checkout or an archive here: no need to ask pip
        path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
        return {"url": url, "dir_info" if os.path.isdir(path) else "archive_info": {}}, wanted
    report = os.path.join(work, "report.json")
    pip("install", "--dry-run", "--ignore-installed", "--no-deps",
        "--ignore-requires-python", "--quiet", "--report", report, wanted,
        what=f"find {wanted}")
    with open(report, encoding="utf-8") as f:
        [item] = json.load(f)["install"]
    origin = item.get("download_info") or {}
    commit = (origin.get("vcs_info") or {}).get("commit_id")
    if commit:
        url = origin["url"]
        return origin, f"{donkeysource.PACKAGE} @ {origin['vcs_info']['vcs']}+{url}@{commit}"
    return origin, wanted


def stage(spec, generation, root, into, given="DONKEYCAR_SOURCE", say=None):
    """The build context of SPEC's image on the stock GENERATION image, in INTO."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    wanted = donkeysource.requirement(spec, given)
    lock = os.path.join(root, "locks", f"dk{generation}.txt")
    if not os.path.isfile(lock):
        raise UserError(f"locks/dk{generation}.txt is missing: the image of a DonkeyCar "
                        f"{generation} fork is built from that generation's lock")
    shutil.rmtree(into, ignore_errors=True)
    os.makedirs(os.path.join(into, "donkeycar"))
    say(f"building DonkeyCar from {spec} into a wheel with pip")
    with tempfile.TemporaryDirectory() as work:
        origin, build = resolve(wanted, work)
        pip("wheel", "--no-deps", "--ignore-requires-python", "--quiet", "-w", work, build,
            what=f"build a wheel of {spec}")
        wheels = glob.glob(os.path.join(work, f"{donkeysource.PACKAGE}-*.whl"))
        if len(wheels) != 1:
            raise UserError(f"{spec} gave no DonkeyCar wheel ({os.listdir(work)}): check "
                            f"that it is DonkeyCar ({given})")
        wheel = os.path.join(into, "donkeycar", os.path.basename(wheels[0]))
        shutil.copy(wheels[0], wheel)
    version = os.path.basename(wheel).split("-")[1]
    if ".".join(version.split(".")[:2]) != generation:
        raise UserError(f"{spec} is DonkeyCar {version}, not {generation}: build it on the "
                        f"image of its generation (make image DONKEYCAR="
                        f"{'.'.join(version.split('.')[:2])}, build_image.sh -d)")
    content = donkeysource.wheel_content(wheel)
    release = version if donkeysource.RELEASES.get(version) == content else None
    found = {"version": version, **donkeysource.origin(json.dumps(origin) if origin else None),
             "content": content, "release": release}
    with open(lock, encoding="utf-8") as f:
        derived = donkeysource.derive_lock(
            f.read(), f"{donkeysource.PACKAGE} @ file://{IN_IMAGE}/{os.path.basename(wheel)}",
            spec, f"locks/dk{generation}.txt")
    with open(os.path.join(into, "donkeycar", "lock.txt"), "w", encoding="utf-8") as f:
        f.write(derived)
    with open(os.path.join(into, "donkeycar", "origin.json"), "w", encoding="utf-8") as f:
        json.dump(origin, f)
    shutil.copy(os.path.join(root, DOCKERFILE), os.path.join(into, "Dockerfile"))
    shutil.copy(os.path.join(root, CONFIG), os.path.join(into, "cloudbuild.yaml"))
    return Staged(folder=into, version=version, content=None if release else content,
                  described=donkeysource.describe(found))


def main(argv=None):
    p = argparse.ArgumentParser(prog="trainer.client.forkimage")
    p.add_argument("-d", "--generation", required=True)
    p.add_argument("--into", required=True)
    p.add_argument("--root", default=".")
    p.add_argument("spec")
    args = p.parse_args(argv)
    generation = generations.check(args.generation)
    staged = stage(args.spec, generation, args.root, args.into)
    print(staged.described, file=sys.stderr)
    # for lib/local_image.sh: the tag and the content, or nothing for a release
    if staged.content:
        print(generations.tag(generation, staged.content), staged.content)


if __name__ == "__main__":
    sys.exit(run_main(main))
