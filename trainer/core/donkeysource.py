"""Which DonkeyCar: the one a team names for an install (DONKEYCAR_SOURCE, a
fork, a branch or a checkout), and the one installed here, known by what it
is rather than where it came from.

    requirement("git+https://github.com/team/donkeycar@race")  # 'donkeycar @ git+https://...@race'
    requirement("5.3.0")                  # 'donkeycar==5.3.0'
    requirement("~/projects/donkeycar")   # 'donkeycar @ file:///home/me/projects/donkeycar'
    derive_lock(text_of("locks/dk5.3.txt"), requirement(spec), spec)  # that lock, with it
    found = here()      # {"version": "5.3.0", "source": "git", "url": ..., "commit": ...,
                        #  "content": "9f2c...", "release": None}
    describe(found)     # 'DonkeyCar 5.3.0 from git https://...@race (commit 1a2b3c4d5e6f), ...'
    is_fork(found)      # True: not PyPI's 5.3.0, so its image is tagged dk5.3-9f2c4a1b0e3d

The content is a sha256 of DonkeyCar's Python files (each one's path under
donkeycar/ and bytes): the code that builds, feeds, trains and runs a
model. Two installs with the same content are the same DonkeyCar whatever
they came from: PyPI's 5.3.0 and a git checkout of its tag, pip-installed
or editable, hash alike (tests/test_fork.py). Other files (the web
controller's pages) are left out: they do not touch a model, and a checkout
holds files a wheel leaves out.

Where it came from is what pip recorded (PEP 610's direct_url.json):
nothing for a package index (PyPI), else the git URL and commit, the
folder, or the archive. A fork's image records its own (`record`, run by
Dockerfile.donkeycar), as pip would have.

    python -m trainer.core.donkeysource requirement SPEC   # for pip install (the light install)
    python -m trainer.core.donkeysource lock SPEC locks/dk5.3.txt   # make install
    python -m trainer.core.donkeysource record ORIGIN.json CONTENT 5.3   # the fork's image
"""
import glob
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import re
import sys
import urllib.parse
import urllib.request

from trainer.core.errors import UserError, run_main

PACKAGE = "donkeycar"
# The content of each PyPI release the toolkit locks (locks/dk*.txt): an
# install with that content is stock, wherever it was installed from.
RELEASES = {
    "5.3.0": "b1ec09994a7945d8b9567085b61acb743b14770fb2d9fc9fe21d0999e7a3371a",
    "5.4.0": "03b7608786d1b2525846515a417d800ff38e2801abddf88ac545cd86908cbb76",
}
SHORT = 12          # hex digits of the content in an image tag: dk5.3-9f2c4a1b0e3d
_VERSION = re.compile(r"(?:donkeycar\s*)?(==|~=|>=|<=|!=|===)?\s*v?(\d+(?:\.\d+)*(?:\.\*)?"
                      r"(?:[.+!-]?[A-Za-z0-9]+)*)", re.I)
_NAMED = re.compile(r"^([A-Za-z0-9_.-]+)\s*(?:\[[^]]*\])?\s*@\s*(\S.*)$")
_URL = re.compile(r"^(git|hg|svn|bzr)\+|^(https?|file)://", re.I)
ARCHIVES = (".whl", ".tar.gz", ".zip")


def requirement(spec, given="DONKEYCAR_SOURCE"):
    """The pip requirement of SPEC: a version ('5.3.0', 'donkeycar==5.3.0'),
    a requirement with a URL ('donkeycar @ git+https://...@branch'), a bare
    URL ('git+https://...@branch'), or a local checkout folder or archive."""
    text = (spec or "").strip()
    if not text:
        raise UserError(f"{given} is empty: name a DonkeyCar version, a pip requirement "
                        "or a checkout folder")
    version = _VERSION.fullmatch(text)
    if version:
        op, number = version.group(1) or "==", version.group(2)
        if op == "==" and number.count(".") == 1:
            number += ".*"                       # 5.3: the newest 5.3.x
        return f"{PACKAGE}{op}{number}"
    named = _NAMED.match(text)
    if named:                                           # 'donkeycar @ URL'
        if named.group(1).lower() != PACKAGE:
            raise UserError(f"{given}={spec}: this requirement installs "
                            f"{named.group(1)}, not {PACKAGE}")
        return f"{PACKAGE} @ {named.group(2)}"
    if _URL.match(text):
        return f"{PACKAGE} @ {text}"
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.isdir(path):
        if not (os.path.isfile(os.path.join(path, PACKAGE, "__init__.py")) and any(
                os.path.isfile(os.path.join(path, f))
                for f in ("setup.py", "setup.cfg", "pyproject.toml"))):
            raise UserError(f"{given}={spec}: {path} is not a DonkeyCar checkout (it has "
                            f"no {PACKAGE}/__init__.py beside a setup.py, setup.cfg or "
                            "pyproject.toml): give the folder `git clone` made")
        return f"{PACKAGE} @ {pathlib.Path(path).as_uri()}"
    if os.path.isfile(path) and path.endswith(ARCHIVES):
        return f"{PACKAGE} @ {pathlib.Path(path).as_uri()}"
    raise UserError(f"{given}={spec}: not a DonkeyCar version (5.3.0), a pip requirement "
                    "(donkeycar @ git+https://github.com/ORG/donkeycar@BRANCH) or a "
                    "checkout folder here")


def derive_lock(lock_text, wanted, spec, lock_name="the lock"):
    """LOCK_TEXT (a locks/dkG.txt, pip constraints) for DonkeyCar WANTED
    (a requirement) in place of its DonkeyCar pin: every other package stays
    at the tested version. WANTED goes to pip beside it as a requirement,
    and is named in its header: pip 23 fails on a URL constraint for a
    package required with extras (donkeycar[pc])."""
    lines = [ln for ln in lock_text.splitlines()
             if not re.match(rf"^{PACKAGE}\s*(\[[^]]*\])?\s*(==|@)", ln, re.I)]
    return "\n".join([f"# {lock_name} with DonkeyCar from {spec} in place of PyPI's "
                      "(derived by trainer/core/donkeysource.py); pip is given it beside "
                      "this file:", f"# {wanted}", *lines, ""])


def content_of(files):
    """The content hash of FILES, [(path under donkeycar/, bytes)]: Python
    files only, each path with '/'."""
    h = hashlib.sha256()
    for path, data in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def counted(path):
    """Whether PATH (under the package, '/'-separated) is in the content."""
    parts = path.split("/")
    return path.endswith(".py") and not any(p.startswith(".") or p == "__pycache__"
                                           for p in parts)


def content(package_dir):
    """The content hash of the DonkeyCar package in the folder PACKAGE_DIR."""
    files = []
    for top, dirs, names in os.walk(package_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in names:
            full = os.path.join(top, name)
            rel = os.path.relpath(full, package_dir).replace(os.sep, "/")
            if counted(rel) and os.path.isfile(full):
                with open(full, "rb") as f:
                    files.append((rel, f.read()))
    return content_of(files)


def wheel_content(wheel):
    """The content hash of the DonkeyCar package inside the wheel file WHEEL."""
    import zipfile
    prefix = PACKAGE + "/"
    with zipfile.ZipFile(wheel) as z:
        return content_of([(n[len(prefix):], z.read(n)) for n in z.namelist()
                           if n.startswith(prefix) and counted(n[len(prefix):])])


def package_dir():
    """The folder `import donkeycar` would load, without importing it; or None."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def origin(direct_url):
    """Where pip installed it from, out of DIRECT_URL (direct_url.json's text,
    or None for a package index)."""
    if not direct_url:
        return {"source": "PyPI"}
    try:
        d = json.loads(direct_url)
    except ValueError:
        d = None
    if not isinstance(d, dict):
        return {"source": "unknown"}
    url = str(d.get("url") or "")
    if isinstance(d.get("vcs_info"), dict):
        vcs = d["vcs_info"]
        return {"source": str(vcs.get("vcs") or "git"), "url": url,
                "commit": vcs.get("commit_id"), "ref": vcs.get("requested_revision")}
    if isinstance(d.get("dir_info"), dict):
        return {"source": "folder", "url": url,
                "editable": bool(d["dir_info"].get("editable"))}
    return {"source": "archive", "url": url}


def here():
    """The DonkeyCar this Python would import: its version, origin, content
    and the PyPI release it is (or None); None when there is none."""
    folder = package_dir()
    if folder is None:
        return None
    try:
        dist = importlib.metadata.distribution(PACKAGE)
        version, found = dist.version, origin(dist.read_text("direct_url.json"))
    except importlib.metadata.PackageNotFoundError:      # a checkout on PYTHONPATH
        version = _init_version(folder)
        found = {"source": "folder", "url": pathlib.Path(folder).parent.as_uri(),
                 "editable": True}
    digest = content(folder)
    return {"version": version, **found, "content": digest,
            "release": version if RELEASES.get(version) == digest else None}


def _init_version(folder):
    try:
        with open(os.path.join(folder, "__init__.py"), encoding="utf-8") as f:
            m = re.search(r"""__version__\s*=\s*['"]([^'"]+)""", f.read())
        return m.group(1) if m else "?"
    except OSError:
        return "?"


def is_fork(found):
    """Whether FOUND (here()'s, or a card's) is other than a PyPI release:
    content unlike the release of its version, or, for a version the
    toolkit has no content of, installed from other than a package index."""
    if not found or found.get("release"):
        return False
    if found.get("version") in RELEASES:
        return True
    return found.get("source") != "PyPI"


def short(digest):
    return str(digest or "")[:SHORT]


def describe(found):
    """FOUND in words; its values may come from an untrusted card."""
    def s(key, n=120):
        value = found.get(key)
        return " ".join(str(value).split())[:n] if value not in (None, "") else ""
    where = s("source") or "?"
    if where == "PyPI":
        text = "PyPI"
    elif s("commit"):
        ref = f"@{s('ref', 60)}" if s("ref") else ""
        text = f"{where} {s('url')}{ref} (commit {s('commit', SHORT)})"
    else:
        url = s("url")
        if url.startswith("file://"):                   # a folder or a file here: its path
            url = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
        text = f"{'the ' if where == 'folder' else ''}{where} {url}".strip()
        if found.get("editable") is True:
            text += " (editable)"
    same = f", PyPI's {s('release', 20)}" if s("release") and where != "PyPI" else ""
    return f"DonkeyCar {s('version', 40) or '?'} from {text}, content {s('content', SHORT)}" \
        f"{same}"


def record(origin_path, expected, generation):
    """In a fork's image (Dockerfile.donkeycar): write where its DonkeyCar
    came from (ORIGIN_PATH: the PEP 610 record, {} for a package index) as
    pip would have, and check that its content is EXPECTED and its version
    of GENERATION."""
    found = here()
    if found is None:
        raise UserError("no DonkeyCar is installed in the image")
    if found["content"] != expected:
        raise UserError(f"the DonkeyCar installed has content {short(found['content'])}, "
                        f"not {short(expected)} as the tag promises")
    if ".".join(found["version"].split(".")[:2]) != generation:
        raise UserError(f"the DonkeyCar installed is {found['version']}, not of "
                        f"generation {generation}")
    with open(origin_path, encoding="utf-8") as f:
        given = json.load(f)
    infos = glob.glob(os.path.join(os.path.dirname(package_dir()),
                                   f"{PACKAGE}-{found['version']}.dist-info"))
    if len(infos) != 1:
        raise UserError(f"cannot find {PACKAGE}'s .dist-info beside it ({infos})")
    target = os.path.join(infos[0], "direct_url.json")
    if given:
        with open(target, "w", encoding="utf-8") as f:
            json.dump(given, f)
    elif os.path.exists(target):
        os.remove(target)
    print(describe(here()))


def main(argv=None):
    """`requirement SPEC`, `lock SPEC LOCK` (derived for SPEC), `record ORIGIN CONTENT G`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "requirement":
        print(requirement(argv[1]))
    elif len(argv) == 3 and argv[0] == "lock":
        with open(argv[2], encoding="utf-8") as f:
            text = f.read()
        sys.stdout.write(derive_lock(text, requirement(argv[1]), argv[1], argv[2]))
    elif len(argv) == 4 and argv[0] == "record":
        record(*argv[1:])
    else:
        raise UserError("usage: python -m trainer.core.donkeysource requirement SPEC | "
                        "lock SPEC LOCK | record ORIGIN.json CONTENT GENERATION")


if __name__ == "__main__":
    sys.exit(run_main(main))
