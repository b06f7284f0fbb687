"""A drive without hardware, for the drive tests (test_drive.py,
test_drive_report.py): the car's own manage.py drive loop with DonkeyCar's
IMAGE_LIST camera over real frames, its MOCK drive train, a bounded number
of loops and the web controller in pilot mode; and the web controller's
websocket, as its page uses it.

    drivable = hardware_free(car, trained, loops=100)
    p = subprocess.Popen(["./drive.sh", ...], cwd=drivable.path, ...)
    await_condition("the web controller", lambda: listening(drivable.port), p)
    send(drivable.port, recording=True)
"""
import glob
import json
import os
import re
import shutil
import socket
import time
from types import SimpleNamespace

import pytest
from fixtures_gcs import free_port
from helpers import SHARED_TUB
from trained import copy_model

FRAMES = 20          # real frames the camera cycles through


def hardware_free(car, trained, loops, **settings):
    """CAR with the session's model (TRAINED's files) in models/, FRAMES real
    frames for the camera, and myconfig.py set for a drive of LOOPS loops
    without hardware, SETTINGS (NAME=value) after it."""
    if not os.path.isdir(SHARED_TUB):
        pytest.skip("../shared/data/tubs/track-5015 is not beside this clone")
    copy_model(trained, car)
    frames = car / "frames"
    frames.mkdir()
    for i in range(100, 100 + FRAMES):
        shutil.copy(os.path.join(SHARED_TUB, "images", f"{i}_cam_image_array_.jpg"), frames)
    port = free_port()
    extra = "".join(f"{k} = {v!r}\n" for k, v in settings.items())
    with open(car / "myconfig.py", "a") as f:
        f.write(f"""
# tests: a drive without hardware
CAMERA_TYPE = "IMAGE_LIST"
PATH_MASK = "{frames}/*_cam_image_array_.jpg"
DRIVE_TRAIN_TYPE = "MOCK"
MAX_LOOPS = {loops}
WEB_INIT_MODE = "local"
WEB_CONTROL_PORT = {port}
RECORD_DURING_AI = True
AUTO_CREATE_NEW_TUB = True
{extra}""")
    return SimpleNamespace(path=car, port=port)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def await_condition(what, check, p, limit=240):
    """Poll CHECK until it holds; fails when the drive (P) ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        assert p.poll() is None, f"the drive ended before {what}"
        time.sleep(0.02)
    raise AssertionError(f"no {what} within {limit} s")


def send(port, **message):
    """MESSAGE to the web controller's websocket, as its page sends it."""
    import asyncio

    from tornado.websocket import websocket_connect

    async def go():
        ws = await websocket_connect(f"ws://127.0.0.1:{port}/wsDrive")
        await ws.write_message(json.dumps(message))
        ws.close()
    asyncio.run(asyncio.wait_for(go(), timeout=30))


def lines(path):
    return [json.loads(line) for line in open(path).read().splitlines()]


def catalog(tub):
    """The records of TUB, in order."""
    out = []
    for path in sorted(glob.glob(f"{tub}/catalog_*.catalog"),
                       key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0])):
        out += lines(path)
    return out
