"""A page as a person sees it: Debian's chromium, headless, no network, a
fresh profile each time.

    html = rendered(path)          # the DOM after the page loaded, scripts run
    shown = pictures_shown(html)   # how many of its pictures the browser drew
    shot = screenshot(path, tmp)   # a PNG of the page as it is drawn
"""
import html as entities
import re
import shutil
import subprocess
import tempfile

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Started as root in a sandbox-less container; no network, no background chatter.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--virtual-time-budget=5000"]


def _chromium(*args):
    assert CHROMIUM, "chromium is not installed: make test installs it (Debian: chromium)"
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def rendered(path):
    """The page's DOM once it has loaded, as chromium serializes it."""
    return _chromium("--dump-dom", f"file://{path}")


def pictures_shown(html):
    """The count the page's own script recorded of pictures drawn (base template)."""
    found = re.search(r'data-pictures-shown="(\d+)"', html)
    assert found, "the page did not finish loading in the browser"
    return int(found.group(1))


def text(html):
    """The page's visible text, tags and scripts left out, spaces collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(entities.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def screenshot(path, folder, size="1280,2400"):
    out = f"{folder}/page.png"
    _chromium(f"--screenshot={out}", f"--window-size={size}", f"file://{path}")
    return out
