"""What the trust-boundary rows share (tests/hardening.py's runner): archives
no honest tool writes, tubs that point out of themselves, configs that do not
load, models that carry code, bombs. The rows live in each script's own test
file (test_archive.py, test_deflate.py, test_train.py, test_movie.py, the
submit scripts'); its fixtures are conftest's plugins."""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hardening import good_archive, tub
from helpers import script_env, tar_bytes

UNSAFE_PATH = (r"archive wip\.tgz is unsafe \(archive\.json names the tub path '{}', which is "
          r"not a folder inside the archive\); nothing was used: make it again with "
          r"make_tub_archive\.sh$")
MALFORMED = r"archive wip\.tgz has a malformed archive\.json \({}\): make it again with "
MEMBER = r"archive wip\.tgz is unsafe \({}\); nothing was restored: make it again with "
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
LONG = "data/" + "x" * 300
def archive_named(name):
    def setup(ctx):
        shutil.copy(ctx.stock.archive, ctx.car / name)
    return setup
def transfer_with_code(ctx):
    good_archive(ctx)
    lambda_model(ctx, "models/lambda.h5")
def movie_model_with_code(ctx):
    good_archive(ctx)
    lambda_model(ctx, "models/pilot-wip.h5")
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
