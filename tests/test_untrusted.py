"""Trust boundaries (issue 15): what an archive, a tub, a config or a model
someone else made can make the scripts do. Each row runs the script a user
would run through the hardening runner (tests/hardening.py): one line, no
traceback, the whole test folder unchanged, nothing outside it.

    .venv/bin/python -m pytest -q tests/test_untrusted.py
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, script_env, tar_bytes, write_synth_tub
from hardening import Row, cloud, good_archive, row_ids, tub, with_tub

from trainer import archive as archive_module
from trainer.names import plain_name

UNSAFE = (r"archive wip\.tgz is unsafe \(archive\.json names the tub path '{}', which is "
          r"not a folder inside the archive\); nothing was used: make it again with "
          r"make_tub_archive\.sh$")
MALFORMED = r"archive wip\.tgz has a malformed archive\.json \({}\): make it again with "
MEMBER = r"archive wip\.tgz is unsafe \({}\); nothing was restored: make it again with "


# -- archives no honest tool writes ----------------------------------------------------

def members_of(path):
    """[(TarInfo attributes, bytes or None)] of the gzip tar at PATH."""
    out = []
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else None
            attrs = {"name": m.name, "type": m.type, "mode": m.mode}
            out.append((attrs, data))
    return out


def edited(ctx, change):
    """wip.tgz: the stock archive with CHANGE(name, data) -> data applied to
    each member (None drops it)."""
    entries = []
    for attrs, data in members_of(ctx.stock.archive):
        if data is not None:
            data = change(attrs["name"], data)
            if data is None:
                continue
        entries.append((attrs, data))
    (ctx.car / "wip.tgz").write_bytes(tar_bytes(entries))


def config_of(ctx):
    return (ctx.car / "config.py").read_bytes()


def manifest_says(tubs_json):
    """wip.tgz: the car's config.py and an archive.json whose "tubs" is
    TUBS_JSON ({tmp} filled in), beside a real tub at {tmp}/hosttub on the host."""
    def setup(ctx):
        shutil.copytree(ctx.stock.tub, ctx.tmp / "hosttub")
        raw = ('{"tubs": %s}' % tubs_json.replace("{tmp}", str(ctx.tmp))).encode()
        (ctx.car / "wip.tgz").write_bytes(tar_bytes([
            ({"name": "config.py"}, config_of(ctx)),
            ({"name": "archive.json"}, raw)]))
    return setup


def raw_manifest(raw):
    def setup(ctx):
        (ctx.car / "wip.tgz").write_bytes(tar_bytes([
            ({"name": "config.py"}, config_of(ctx)),
            ({"name": "archive.json"}, raw),
            ({"name": "data/manifest.json"}, b"[]\n")]))
    return setup


def members(*entries):
    def setup(ctx):
        (ctx.car / "wip.tgz").write_bytes(tar_bytes([({"name": "config.py"}, config_of(ctx)),
                                                     *entries]))
    return setup


def image_line(value):
    """A tub whose catalog's line 3 names the image VALUE."""
    def damage(path):
        catalog = Path(path) / "catalog_0.catalog"
        lines = catalog.read_text().splitlines()
        record = json.loads(lines[2])
        record["cam/image_array"] = value
        lines[2] = json.dumps(record)
        catalog.write_text("\n".join(lines) + "\n")
        manifest = Path(path) / "catalog_0.catalog_manifest"   # DonkeyCar seeks by it
        meta = json.loads(manifest.read_text())
        meta["line_lengths"] = [len(ln) + 1 for ln in lines]
        manifest.write_text(json.dumps(meta))
    return damage


def set_meta(**values):
    """A tub whose manifest.json's catalog metadata has VALUES."""
    def damage(path):
        lines = (Path(path) / "manifest.json").read_text().splitlines()
        meta = json.loads(lines[4])
        meta.update(values)
        lines[4] = json.dumps(meta)
        (Path(path) / "manifest.json").write_text("\n".join(lines) + "\n")
    return damage


def archive_with_tub(damage):
    """wip.tgz packed the honest way, then the tub in it damaged."""
    def setup(ctx):
        work = ctx.tmp / "pack"
        shutil.copytree(ctx.stock.tub, work / "data")
        damage(work / "data")
        entries = [({"name": "config.py"}, config_of(ctx)),
                   ({"name": "myconfig.py"}, (ctx.car / "myconfig.py").read_bytes()),
                   ({"name": "archive.json"},
                    json.dumps({"tubs": [{"path": "data"}]}).encode())]
        for p in sorted((work / "data").rglob("*")):
            if p.is_file():
                entries.append(({"name": str(p.relative_to(work))}, p.read_bytes()))
        (ctx.car / "wip.tgz").write_bytes(tar_bytes(entries))
        shutil.rmtree(work)
    return setup


def without_default_model_type(ctx):
    def change(name, data):
        if name == "config.py":
            return re.sub(rb"(?m)^DEFAULT_MODEL_TYPE *=.*$", b"", data)
        return data
    edited(ctx, change)


def lambda_model(ctx, where):
    """A real Keras model with a Lambda layer (code in the .h5) at WHERE."""
    shutil.copy(ctx.request.getfixturevalue("lambda_h5"), ctx.car / where)


# -- the bombs: made once per session, fast ------------------------------------------

def headers_only(path, count, names=None):
    """A gzip tar of COUNT empty members data/images/NNNNNNN.jpg (or NAMES(k)),
    written header by header: tarfile takes minutes for a million."""
    from isal import igzip
    base = tarfile.TarInfo("data/images/0000000.jpg")
    base.mtime, base.mode = 0, 0o644
    block = bytearray(base.tobuf(format=tarfile.GNU_FORMAT))
    block[148:156] = b" " * 8
    name_at = slice(12, 19)          # the digits in data/images/NNNNNNN.jpg
    rest = sum(block) - sum(block[name_at])
    with igzip.open(path, "wb", compresslevel=1) as gz:
        gz.write(tarfile.TarInfo("config.py").tobuf())
        chunk = bytearray()
        for k in range(count):
            digits = b"%07d" % (0 if names == "same" else k)
            block[name_at] = digits
            block[148:156] = b"%06o\0 " % (rest + sum(digits))
            chunk += block
            if len(chunk) >= 1 << 22:
                gz.write(chunk)
                chunk.clear()
        gz.write(chunk + bytes(1024))
    return path


def zip_bomb(path, size=2**30):
    """A gzip tar of config.py and one SIZE-byte member of zeros (~1 MB per GiB)."""
    from isal import igzip
    with igzip.open(path, "wb", compresslevel=1) as gz, \
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("config.py"))
        info = tarfile.TarInfo("data/images/0_cam_image_array_.jpg")
        info.size = size
        zeros = bytes(1 << 22)

        class Zeros(io.RawIOBase):
            left = size

            def read(self, n=-1):
                n = min(n if n >= 0 else self.left, self.left, len(zeros))
                self.left -= n
                return zeros[:n]
        tar.addfile(info, Zeros())
    return path


@pytest.fixture(scope="session")
def bombs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bombs")
    return {"million": headers_only(root / "million.tgz", 1_000_000),
            "duplicates": headers_only(root / "duplicates.tgz", 1_000_000, names="same"),
            "gigabyte": zip_bomb(root / "gigabyte.tgz")}


def bomb(kind):
    def setup(ctx):
        shutil.copy(ctx.request.getfixturevalue("bombs")[kind], ctx.car / "wip.tgz")
    return setup


def mount_tmpfs(ctx, folder, options):
    folder.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                       capture_output=True, text=True)
    if r.returncode:
        reason = f"cannot mount a tmpfs here ({r.stderr.strip()}): needs root"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run it")
        pytest.skip(reason)
    ctx.finally_(lambda: subprocess.run(["umount", str(folder)], check=True))


def small_disk(kind):
    """A 512 MiB tmpfs at {tmp}/small, and bomb KIND as wip.tgz."""
    def setup(ctx):
        bomb(kind)(ctx)
        mount_tmpfs(ctx, ctx.tmp / "small", "size=512m")
    return setup


def few_inodes(ctx):
    """A roomy tmpfs at {tmp}/small that holds only 40 files: the size check
    passes, and the disk fills up (ENOSPC) half-way through the tub."""
    good_archive(ctx)
    mount_tmpfs(ctx, ctx.tmp / "small", "size=512m,nr_inodes=40")


# -- make_tub_archive.sh: a tub holds what a tub holds ---------------------------------

def keys_in_the_tub(ctx):
    data = tub(ctx)
    (data / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (data / ".netrc").write_text("machine github.com password hunter2\n")
    (data / "client_secret.json").write_text(json.dumps({"installed": {
        "client_id": "x", "client_secret": "hunter2"}}))
    (data / ".aws").mkdir()
    (data / ".aws" / "credentials").write_text("[default]\naws_secret_access_key=x\n")
    (data / "images" / "notes.txt").write_text("lap 3 was bad\n")


def only_tub_files(ctx, r):
    with tarfile.open(ctx.car / "wip.tgz") as tar:
        names = tar.getnames()
    tub_names = [n for n in names if n.startswith("data/")]
    assert all(re.fullmatch(r"data/(manifest\.json|catalog_\d+\.catalog(_manifest)?|"
                            r"images/\d+_cam_image_array_\.jpg)", n) for n in tub_names), \
        tub_names
    assert len([n for n in tub_names if n.startswith("data/images/")]) == 200
    for name in ("id_ed25519", ".netrc", "client_secret.json", ".aws/", "images/notes.txt"):
        assert f"skipped data/{name}" in r.stderr


def host_secret(ctx):
    """A real frame on the host, outside the car, that a catalog points at."""
    shutil.copy(next((ctx.stock.tub / "images").iterdir()), ctx.tmp / "secret.jpg")


def tub_pointing_out(value):
    def setup(ctx):
        host_secret(ctx)
        image_line(value.format(tmp=ctx.tmp))(tub(ctx))
    return setup


def linked_frame(ctx):
    """A frame in the tub that is a link to a file on the host."""
    host_secret(ctx)
    frame = tub(ctx) / "images" / "3_cam_image_array_.jpg"
    frame.unlink()
    frame.symlink_to(ctx.tmp / "secret.jpg")


def config_without_default_model_type(ctx):
    tub(ctx)
    config = ctx.car / "config.py"
    config.write_text(re.sub(r"(?m)^DEFAULT_MODEL_TYPE *=.*$", "", config.read_text()))


def v1_tub_pointing_out(ctx):
    host_secret(ctx)
    record = tub(ctx, "v1_tub") / "record_3.json"
    data = json.loads(record.read_text())
    data["cam/image_array"] = "../../secret.jpg"
    record.write_text(json.dumps(data))


MAKE = [
    Row("make:archive-name-with-a-space", with_tub(), ("make_tub_archive.sh", "-a", "my run"),
        1, r"-a 'my run' is not a plain name: use letters, digits, '\.', '_' and '-' "
           r"\(starting with a letter or digit\), e\.g\. -a wip$"),
    Row("make:tub-is-a-file", with_tub(),
        ("make_tub_archive.sh", "-t", "data/catalog_0.catalog"), 1,
        r"tub data/catalog_0\.catalog is a file, not a tub folder: give -t the folder that "
        r"holds manifest\.json, e\.g\. -t data$"),
    Row("make:keys-and-dotfiles-never-packed", keys_in_the_tub, ("make_tub_archive.sh",), 0,
        r"^make_tub_archive\.sh: warning: skipped data/images/notes\.txt: not a tub file",
        warnings=5, changes=("wip.tgz",), then=only_tub_files),
    Row("make:catalog-image-climbs-out", tub_pointing_out("../../secret.jpg"),
        ("make_tub_archive.sh",), 1,
        r"tub data: catalog_0\.catalog line 3 names the image '\.\./\.\./secret\.jpg' for "
        r"cam/image_array, which is not a file in the tub's images/ folder; the tub is "
        r"unsafe or damaged: record it again, or copy it again from the car$"),
    Row("make:catalog-image-absolute", tub_pointing_out("{tmp}/secret.jpg"),
        ("make_tub_archive.sh",), 1,
        r"tub data: catalog_0\.catalog line 3 names the image '/\S+/secret\.jpg' for "
        r"cam/image_array, which is not a file in the tub's images/ folder"),
    Row("make:legacy-v1-image-climbs-out", v1_tub_pointing_out, ("make_tub_archive.sh",), 1,
        r"legacy tub data: record_3\.json names the image '\.\./\.\./secret\.jpg' for "
        r"cam/image_array, which is not a file in the tub folder; the tub is unsafe or "
        r"damaged: fix or remove that record_N\.json and run again$"),
    Row("make:frame-is-a-link-to-the-host", linked_frame, ("make_tub_archive.sh",), 1,
        r"tub data: images/3_cam_image_array_\.jpg is a link, which is never packed or "
        r"read: copy the frame itself into the tub$"),
    Row("make:catalog-path-climbs-out",
        with_tub(damage=set_meta(paths=["../../catalog_0.catalog"])),
        ("make_tub_archive.sh",), 1,
        r"tub data: manifest\.json names the catalog '\.\./\.\./catalog_0\.catalog', which "
        r"is not a catalog_N\.catalog in the tub; the tub is unsafe or damaged"),
    Row("make:absurd-current-index", with_tub(damage=set_meta(current_index=20_000_000)),
        ("make_tub_archive.sh",), 1,
        r"tub data: manifest\.json counts 20000000 live records but the catalogs hold "
        r"200; the tub is damaged: copy it again from the car$"),
    Row("make:current-index-1e9", with_tub(damage=set_meta(current_index=10**9)),
        ("make_tub_archive.sh",), 1,
        r"manifest\.json counts 1000000000 live records but the catalogs hold 200"),
    Row("make:config-without-default-model-type", config_without_default_model_type,
        ("make_tub_archive.sh",), 1,
        r"config\.py sets no DEFAULT_MODEL_TYPE: it is not a car's config\.py; make the "
        r"car folder with 'donkey createcar' and set DEFAULT_MODEL_TYPE in myconfig\.py$"),
]


# -- deflate_tub_archive.sh: our own manifest, members and sizes are untrusted --------

LONG = "data/" + "x" * 300
DEFLATE = [
    Row("deflate:archive-json-absolute-tub", manifest_says('[{"path": "{tmp}/hosttub"}]'),
        ("deflate_tub_archive.sh", "-f", "-d", "{tmp}/restored"), 1,
        UNSAFE.format(r"/\S+/hosttub")),
    Row("deflate:archive-json-climbing-tub", manifest_says('[{"path": "../hosttub"}]'),
        ("deflate_tub_archive.sh", "-f", "-d", "{tmp}/restored"), 1,
        UNSAFE.format(r"\.\./hosttub")),
    Row("deflate:archive-json-dot-tub", manifest_says('[{"path": "data/../.."}]'),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        UNSAFE.format(r"data/\.\./\.\.")),
    Row("deflate:archive-json-a-list", raw_manifest(b"[1, 2]"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format("a JSON list, not an object")),
    Row("deflate:archive-json-invalid", raw_manifest(b"{'tubs': "),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format("not valid JSON: .+")),
    Row("deflate:archive-json-without-path", raw_manifest(b'{"tubs": [{"records": 3}]}'),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format('tub 1 has no "path" string')),
    Row("deflate:archive-json-path-a-number", raw_manifest(b'{"tubs": [{"path": 7}]}'),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format('tub 1 has no "path" string')),
    Row("deflate:archive-json-tubs-not-a-list", raw_manifest(b'{"tubs": "data"}'),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format('"tubs" is not a list')),
    Row("deflate:member-file-then-folder",
        members(({"name": "data"}, b"x"), ({"name": "data/manifest.json"}, b"[]\n")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MEMBER.format(r"member 'data/manifest\.json' is inside 'data', which is a file")),
    Row("deflate:member-folder-then-file",
        members(({"name": "data/manifest.json"}, b"[]\n"), ({"name": "data"}, b"x")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MEMBER.format(r"member 'data' is both a file and a folder")),
    Row("deflate:member-twice",
        members(({"name": "data/manifest.json"}, b"[]\n"),
                ({"name": "data/manifest.json"}, b"{}\n")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MEMBER.format(r"member 'data/manifest\.json' appears twice")),
    Row("deflate:member-name-of-300-characters", members(({"name": LONG}, b"x")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MEMBER.format(r"member 'data/x+'\.\.\. has a name longer than a file system "
                      r"takes")),
    Row("deflate:catalog-image-climbs-out", archive_with_tub(image_line("../../x.jpg")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        r"tub wip\.tgz/data: catalog_0\.catalog line 3 names the image '\.\./\.\./x\.jpg' "
        r"for cam/image_array, which is not a file in the tub's images/ folder"),
    Row("deflate:a-million-members", bomb("million"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        r"archive wip\.tgz has more than 500,000 members, more than any car folder holds; "
        r"nothing was extracted: make it again with make_tub_archive\.sh$"),
    Row("deflate:a-million-duplicates", bomb("duplicates"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        r"archive wip\.tgz has more than 500,000 members"),
    Row("deflate:gigabyte-member-on-a-small-disk", small_disk("gigabyte"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/small/car"), 1,
        r"archive wip\.tgz needs at least 1,280 MiB free to extract \(1,024 MiB of files, "
        r"256 MiB to spare\) but \S+/small/car has 512 MiB free: free some space, or "
        r"extract it on a larger disk; nothing was extracted$"),
    Row("deflate:disk-fills-up-while-extracting", few_inodes,
        ("deflate_tub_archive.sh", "-d", "{tmp}/small/car"), 1,
        r"no space left in \S+/small/car while extracting wip\.tgz, which needs \d+ MiB "
        r"or more; nothing was kept: free some space and run again$"),
]


# -- local_train.sh: names, manifests, configs and models --------------------------

def archive_named(name):
    def setup(ctx):
        shutil.copy(ctx.stock.archive, ctx.car / name)
    return setup


def transfer_with_code(ctx):
    good_archive(ctx)
    lambda_model(ctx, "models/lambda.h5")


TRAIN = [
    Row("train:model-name-climbs-out", good_archive,
        ("local_train.sh", "-m", "../../x"), 1,
        r"-m '\.\./\.\./x' is not a plain name: use letters, digits, '\.', '_' and '-' "
        r"\(starting with a letter or digit\), e\.g\. -m pilot-wip$"),
    Row("train:model-name-absolute", good_archive, ("local_train.sh", "-m", "{tmp}/x"), 1,
        r"-m '/\S+' is not a plain name"),
    Row("train:archive-name-with-a-space", archive_named("my run.tgz"),
        ("local_train.sh", "-a", "my run.tgz"), 1,
        r"archive 'my run' makes the model name 'pilot-my run', which is not a plain "
        r"name: rename the archive \(letters, digits, '\.', '_', '-'\), or pass -m NAME, "
        r"e\.g\. -m pilot-wip$"),
    Row("train:archive-json-absolute-tub", manifest_says('[{"path": "{tmp}/hosttub"}]'),
        ("local_train.sh",), 1, UNSAFE.format(r"/\S+/hosttub")),
    Row("train:archive-json-a-list", raw_manifest(b"[]"), ("local_train.sh",), 1,
        MALFORMED.format("a JSON list, not an object")),
    Row("train:catalog-image-absolute", archive_with_tub(image_line("/etc/hostname")),
        ("local_train.sh",), 1,
        r"tub wip\.tgz/data: catalog_0\.catalog line 3 names the image '/etc/hostname'"),
    Row("train:config-without-default-model-type", without_default_model_type,
        ("local_train.sh",), 1, r"config\.py sets no DEFAULT_MODEL_TYPE: it is not a car's "
                                r"config\.py"),
    Row("train:transfer-model-runs-code", transfer_with_code,
        ("local_train.sh", "-T", "models/lambda.h5"), 1,
        r"the transfer model models/lambda\.h5 has a layer that runs Python code when it "
        r"loads \(Lambda scale\): pass --trust-model-code only if you trust who made it, or "
        r"use a model made by local_train\.sh$"),
]


# -- local_makemovie.sh -----------------------------------------------------------------

def movie_model_with_code(ctx):
    good_archive(ctx)
    lambda_model(ctx, "models/pilot-wip.h5")


MOVIE = [
    Row("movie:model-runs-code", movie_model_with_code, ("local_makemovie.sh",), 1,
        r"the model models/pilot-wip\.h5 has a layer that runs Python code when it loads "
        r"\(Lambda scale\): pass --trust-model-code only if you trust who made it"),
    Row("movie:catalog-image-climbs-out", archive_with_tub(image_line("../../../x.jpg")),
        ("local_makemovie.sh",), 1,
        r"tub wip\.tgz/data: catalog_0\.catalog line 3 names the image "
        r"'\.\./\.\./\.\./x\.jpg'"),
    Row("movie:archive-json-climbing-tub", manifest_says('[{"path": "../../hosttub"}]'),
        ("local_makemovie.sh",), 1, UNSAFE.format(r"\.\./\.\./hosttub")),
]

# -- the cloud scripts: the same names, refused before anything is sent ----------------

CLOUD = [
    Row("submit:model-name-climbs-out", cloud(good_archive),
        ("submit_cloud_train.sh", "-n", "-m", "../models/x"), 1,
        r"-m '\.\./models/x' is not a plain name"),
    Row("submit:archive-name-with-a-space", cloud(archive_named("my run.tgz")),
        ("submit_cloud_train.sh", "-n", "-a", "my run.tgz"), 1,
        r"archive 'my run' makes the model name 'pilot-my run', which is not a plain name"),
    Row("submit-movie:movie-name-with-a-space", cloud(good_archive),
        ("submit_cloud_makemovie.sh", "-n", "-o", "my movie.mp4"), 1,
        r"-o 'my movie\.mp4' is not a plain name: .* e\.g\. -o pilot-wip\.mp4$"),
]

ROWS = MAKE + DEFLATE + TRAIN + MOVIE + CLOUD


@pytest.fixture(scope="session")
def lambda_h5(tmp_path_factory):
    """A real Keras model whose Lambda layer holds code (made in a child: one
    TensorFlow start, not in the test process)."""
    path = tmp_path_factory.mktemp("models") / "lambda.h5"
    subprocess.run([sys.executable, "-c", LAMBDA_MODEL, str(path)], check=True,
                   capture_output=True, env=script_env())
    return path


LAMBDA_MODEL = """
import sys
import tensorflow as tf
inputs = tf.keras.Input((120, 160, 3), name="img_in")
x = tf.keras.layers.Lambda(lambda t: t / 255.0, name="scale")(inputs)
x = tf.keras.layers.Flatten()(x)
outputs = [tf.keras.layers.Dense(1, name="n_outputs0")(x),
           tf.keras.layers.Dense(1, name="n_outputs1")(x)]
tf.keras.Model(inputs, outputs).save(sys.argv[1])
"""


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_trust_boundaries(row, harden):
    harden(row)


# -- bounded time and memory ------------------------------------------------------------

def peak(argv, cwd):
    """(exit code, stderr, seconds, peak RSS in MiB of the whole command)."""
    probe = ("import resource, subprocess, sys, time; t = time.time(); "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(r.returncode, round(time.time() - t, 1), "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); "
             "print(r.stderr, end='')")
    r = subprocess.run([sys.executable, "-c", probe, *argv], cwd=cwd, env=script_env(),
                       capture_output=True, text=True, timeout=300)
    first, _, stderr = r.stdout.partition("\n")
    code, seconds, mib = first.split()
    return int(code), stderr, float(seconds), int(mib)


@pytest.mark.parametrize("kind", ["million", "duplicates"])
def test_member_bombs_end_within_seconds_in_bounded_memory(kind, bombs, tmp_path):
    code, stderr, seconds, mib = peak(
        [os.path.join(ROOT, "deflate_tub_archive.sh"), "-a", str(bombs[kind]),
         "-d", str(tmp_path / "restored")], tmp_path)
    assert code == 1 and "more than 500,000 members" in stderr, stderr
    assert seconds < 30 and mib < 300, (seconds, mib)
    assert not (tmp_path / "restored").exists()


def test_absurd_current_index_ends_within_seconds_in_bounded_memory(car, tmp_path):
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=20)
    set_meta(current_index=10**9)(car / "data")
    code, stderr, seconds, mib = peak([str(car / "make_tub_archive.sh")], car)
    assert code == 1 and "counts 1000000000 live records" in stderr, stderr
    assert seconds < 30 and mib < 500, (seconds, mib)


# -- units: names, the card's config, models ----------------------------------------------

@pytest.mark.parametrize("good", ["wip", "pilot-wip", "a.b_c-1", "X" * 100])
def test_plain_names_pass(good):
    assert plain_name(good, "-m") == good


@pytest.mark.parametrize("bad", ["", "my run", "../x", "/abs/x", "a/b", ".hidden", "-x",
                                 "x" * 101, "tab\tname", "é"])
def test_other_names_are_refused_in_one_line(bad):
    from trainer.errors import UserError
    with pytest.raises(UserError) as e:
        plain_name(bad, "-m")
    assert "\n" not in str(e.value) and str(e.value).startswith("-m ")


def test_the_card_and_wandb_get_training_settings_with_secrets_redacted(car):
    from trainer import tracking
    from trainer.config import REDACTED, effective, load_car_config, redact_overrides
    with open(car / "myconfig.py", "a") as f:
        f.write('\nMQTT_PASSWORD = "hunter2"\nAWS_SECRET_ACCESS_KEY = "abc"\n'
                'AWS_ACCESS_KEY_ID = "AKIA"\nPI_PASSWD = "raspberry"\n'
                'IMAGE_TOKEN = "t"\nPI_HOSTNAME = "mycar.local"\n')
    cfg = load_car_config(str(car), ["MAX_EPOCHS=3"])
    card = effective(cfg)
    text = json.dumps(card)
    for secret in ("hunter2", "abc", "AKIA", "raspberry", "mycar.local"):
        assert secret not in text
    assert card["MAX_EPOCHS"] == 3 and card["IMAGE_W"] == 160
    assert card["DEFAULT_MODEL_TYPE"] and card["IMAGE_TOKEN"] == REDACTED
    assert "PI_HOSTNAME" not in card              # not a training setting
    assert tracking.effective is effective         # W&B's config comes from the same place
    assert redact_overrides(["MQTT_PASSWORD=x", "MAX_EPOCHS=3"]) == [
        f"MQTT_PASSWORD={REDACTED}", "MAX_EPOCHS=3"]


def test_myconfig_travels_as_written(car, synth_tub):
    with open(car / "myconfig.py", "a") as f:
        f.write('\nMQTT_PASSWORD = "hunter2"\n')
    path = archive_module.build_archive(str(car), ["data"], "wip", say=lambda *a: None,
                                        warn=lambda *a: None)
    with tarfile.open(path) as tar:
        assert tar.extractfile("myconfig.py").read() == (car / "myconfig.py").read_bytes()


def test_a_model_with_code_loads_only_when_trusted(lambda_h5, stock):
    from trainer.errors import UserError
    from trainer.export import check_model_code, code_layers
    assert code_layers(str(lambda_h5)) == ["Lambda scale"]
    assert code_layers(str(stock.small_model)) == []        # DonkeyCar's own: no code
    with pytest.raises(UserError, match="--trust-model-code"):
        check_model_code(str(lambda_h5), "model", trusted=False)
    check_model_code(str(lambda_h5), "model", trusted=True)
    from trainer.export import load_keras
    model = load_keras(str(lambda_h5), trusted=True)     # what --trust-model-code allows
    assert tuple(model.inputs[0].shape[1:]) == (120, 160, 3)


def test_limits_are_checked_before_anything_is_written(bombs, tmp_path, monkeypatch):
    """The size check stops at the bomb's header: no byte of it is inflated."""
    monkeypatch.setattr(archive_module, "DISK_MARGIN", 0)
    free = 512 * 2**20
    from trainer.errors import UserError
    t = time.time()
    with pytest.raises(UserError, match="needs at least 1,024 MiB"):
        archive_module._limits(str(bombs["gigabyte"]), "wip.tgz", str(tmp_path), free)
    assert time.time() - t < 5
