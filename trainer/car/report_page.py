"""The drive report's page (drive_report.sh): one self-contained HTML file,
its plots PNGs drawn by matplotlib (core/pages.py, templates/drive.html.j2).

    write(drive, numbers, "data/tub_3.report.html")

Made where the [train] and [report] extras are (matplotlib, Jinja2): the
laptop, from the tub copied back. A car's light install has neither;
missing() says so and the console summary stands alone.
"""
import os

from trainer.car.report import BEFORE, PILOT_MODES, angle, compared, mode_of
from trainer.core import pages

TEMPLATE = "drive.html.j2"


def missing():
    """Why the page cannot be made here, or None."""
    for module, extra in (("matplotlib", "train"), ("jinja2", "report")):
        try:
            __import__(module)
        except ImportError:
            return (f"{module} is not installed here (the car's light install): copy the "
                    f"tub to the laptop and run drive_report.sh there (pip install "
                    f"'robocar-trainer[{extra}]')")
    return None


def write(drive, n, path):
    page = pages.Page(f"How {(n['model'] or {}).get('name') or 'the pilot'} drove "
                      f"{drive.name}")
    page.figure(steering_figure(drive, n), "Steering per record: the pilot's on the "
                "frames it drove, the user's on theirs; takeovers in red")
    if n["inference"]:
        page.figure(latency_figure(drive, n), "Inference time per frame against the "
                    "drive loop's budget (1/DRIVE_LOOP_HZ)")
    if n["period"]:
        page.figure(loop_figure(drive, n), "The loop: its parts' time and its period; "
                    "an overrun is a loop whose parts took longer than the budget")
    pairs = compared(drive.records)
    if pairs:
        page.figure(compare_figure(pairs), "Pilot vs user steering on the frames where "
                    "both are known")
    takeovers = [dict(t, strip=pages.png(strip_figure(drive, t)) if t["before"] else None)
                 for t in n["takeovers"]]
    total = sum(n["time"].values()) or 1.0
    modes = [{"mode": m, "seconds": s, "share": s / total}
             for m, s in sorted(n["time"].items(), key=lambda kv: -kv[1])]
    return page.write(path, TEMPLATE, n=n, model=n["model"], card=(n["model"] or {}).get(
        "card") or {}, modes=modes, takeovers=takeovers, before=BEFORE)


def _takeover_lines(ax, n):
    for t in n["takeovers"]:
        ax.axvline(t["index"], color="red", linewidth=1)


def steering_figure(drive, n):
    fig, ax = pages.figure((10, 3.5))
    pilot = [(r["_index"], angle(r, "pilot/angle")) for r in drive.records
             if mode_of(r) in PILOT_MODES and angle(r, "pilot/angle") is not None]
    user = [(r["_index"], angle(r, "user/angle")) for r in drive.records
            if mode_of(r) == "user" and angle(r, "user/angle") is not None]
    if pilot:
        ax.plot(*zip(*pilot), ".", markersize=3, label="pilot/angle (pilot drove)")
    if user:
        ax.plot(*zip(*user), ".", markersize=3, label="user/angle (user drove)")
    _takeover_lines(ax, n)
    ax.set_xlabel("record")
    ax.set_ylabel("steering")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def latency_figure(drive, n):
    fig, ax = pages.figure((10, 3))
    loops = [(lp["loop"], lp["inference_ms"]) for lp in drive.loops
             if lp.get("inference_ms") is not None]
    ax.plot(*zip(*loops), ".", markersize=3, label="inference")
    ax.axhline(n["budget_ms"], color="red", linestyle="--", label="budget")
    for key, style in (("p50", ":"), ("p99", "-.")):
        ax.axhline(n["inference"][key], color="gray", linestyle=style, label=key)
    ax.set_xlabel("loop")
    ax.set_ylabel("ms")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def loop_figure(drive, n):
    fig, ax = pages.figure((10, 3))
    work = [(lp["loop"], lp["work_ms"]) for lp in drive.loops if lp.get("work_ms") is not None]
    period = [(lp["loop"], lp["period_ms"]) for lp in drive.loops
              if lp.get("period_ms") is not None]
    if period:
        ax.plot(*zip(*period), "-", linewidth=0.8, label="period")
    if work:
        ax.plot(*zip(*work), ".", markersize=3, label="parts' time")
    over = [(o["loop"], o["work_ms"]) for o in n["overruns"]]
    if over:
        ax.plot(*zip(*over), "x", color="red", label="overrun")
    ax.axhline(n["budget_ms"], color="red", linestyle="--", label="budget")
    ax.set_xlabel("loop")
    ax.set_ylabel("ms")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def compare_figure(pairs):
    fig, ax = pages.figure((4, 4))
    ax.plot([p for _, p, _ in pairs], [u for _, _, u in pairs], ".", markersize=4)
    ax.plot([-1, 1], [-1, 1], color="gray", linewidth=0.8)
    ax.set_xlabel("pilot/angle")
    ax.set_ylabel("user/angle")
    return fig


def strip_figure(drive, takeover):
    """The frames just before TAKEOVER, each with the pilot's steering."""
    from PIL import Image
    frames = takeover["before"]
    fig = pages.figure((1.6 * len(frames), 1.7))[0]
    fig.clear()
    for i, r in enumerate(frames):
        ax = fig.add_subplot(1, len(frames), i + 1)
        image = r.get("cam/image_array")
        path = os.path.join(drive.tub, "images", str(image))
        if isinstance(image, str) and os.path.isfile(path):
            with Image.open(path) as im:
                ax.imshow(im.convert("RGB"))
        steering = angle(r, "pilot/angle")
        ax.set_title(f"{r['_index']}: {steering:+.2f}" if steering is not None else
                     str(r["_index"]), fontsize=7)
        ax.axis("off")
    return fig
