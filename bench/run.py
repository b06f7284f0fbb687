"""make bench: the toolkit against DonkeyCar's own `donkey train`.

    python bench/run.py [--pairs 5] [--epochs 2] [--out bench/results]

On one car folder made by `donkey createcar`, holding the real tub
../shared/data/tubs/track-5015 in data/ (MAX_EPOCHS=2, early stopping off),
alternately runs
  ./local_train.sh                     archive -> extract -> train -> h5/tflite/onnx
                                       -> parity -> the verdict -> card
  donkey train --tub data --model ...  train -> h5 -> tflite
Like with like: local_train.sh holds the last tenth of the tub out of
training for its verdict, so `donkey train` gets a myconfig whose
TRAIN_FILTER keeps out the same records: both train on the same 4,513.
and reports each side's wall time and peak memory (/usr/bin/time: the
largest resident set of the process), the ratios pair by pair and their
median, and where the toolkit's extra seconds go (from the card's step
timings). Also make_tub_archive.sh (which decodes every frame it packs)
against `tar czf`, alternately ARCHIVE_RUNS times each, medians compared:
it must stay under ARCHIVE_LIMIT times tar's; and the extraction against
`tar xzf`, on the same tub. Writes bench/results/bench-DATE.json.

    python bench/run.py --archive-only     # the archive's numbers alone, in a minute

Matched pairs. On a shared virtual machine the cores on offer change from
minute to minute: the same `donkey train` takes 60 s on two cores and 97 s
when it gets one, with the same CPU seconds. A pair compares like with like
only if both sides ran with the same parallelism (CPU seconds / wall
seconds, within PARALLELISM_MATCH); the headline median is over such
pairs, and pairs are run until there are PAIRS of them (at most twice
PAIRS in all). The median over every pair is printed too.
"""
import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from trainer.job.verdict import HELD_FRACTION  # noqa: E402  (the toolkit's hold-out)

TUB = os.path.join(ROOT, "..", "shared", "data", "tubs", "track-5015")
PY = sys.executable
PARALLELISM_MATCH = 0.15
RECORDS = 5015
ARCHIVE_RUNS = 5
ARCHIVE_LIMIT = 2.0      # make_tub_archive.sh / tar czf, medians (issue 21)
DONKEY_MYCONFIG = "myconfig-donkey.py"


def timed(cmd, cwd, env=None):
    """(wall seconds, peak RSS MiB, CPU seconds) of CMD, by /usr/bin/time.
    CPU seconds (user + system) are what another process on the machine
    disturbs least: reported beside wall time as a check on noise."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        r = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S", "-o", t.name, *cmd], cwd=cwd,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode != 0:
            sys.exit(f"bench: {' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
        wall, rss_kib, user, system = t.read().split()[-4:]
    return float(wall), int(rss_kib) / 1024, float(user) + float(system)


def make_car(work, epochs):
    car = os.path.join(work, "mycar")
    subprocess.run([PY, "-m", "donkeycar.management.base", "createcar", "--path", car],
                   check=True, capture_output=True)
    with open(os.path.join(car, "myconfig.py"), "a") as f:
        f.write(f"\nMAX_EPOCHS = {epochs}\nUSE_EARLY_STOP = False\n"
                "EARLY_STOP_PATIENCE = 1000\n")
    shutil.rmtree(os.path.join(car, "data"))
    shutil.copytree(TUB, os.path.join(car, "data"))
    for s in ("make_tub_archive.sh", "local_train.sh"):
        os.symlink(os.path.join(ROOT, s), os.path.join(car, s))
    # donkey train's own myconfig: the records local_train.sh holds out, kept
    # out of its training too (trainer/job/verdict.py: the last tenth).
    held = math.ceil(RECORDS * HELD_FRACTION)
    with open(os.path.join(car, "myconfig.py")) as f, \
            open(os.path.join(car, DONKEY_MYCONFIG), "w") as out:
        out.write(f.read() + f"\nTRAIN_FILTER = lambda r: r.underlying['_index'] < "
                  f"{RECORDS - held}\n")
    return car


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=5,
                   help="matched alternating pairs wanted (default: 5; at most twice "
                   "as many are run)")
    p.add_argument("--epochs", type=int, default=2, help="MAX_EPOCHS (default: 2)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                   help="results folder (default: bench/results)")
    p.add_argument("--archive-only", action="store_true",
                   help="only the archive and extraction timings (default: training too)")
    args = p.parse_args(argv)
    if not os.path.isdir(TUB):
        sys.exit(f"bench: {TUB} is missing (the team's shared folder beside the clone)")
    env = dict(os.environ, TRAINER_PYTHON=PY)
    work = tempfile.mkdtemp(prefix="robocar-bench-")
    try:
        car = make_car(work, args.epochs)
        result = {"date": datetime.date.today().isoformat(), "machine": machine(),
                  "tub": "track-5015", "records": RECORDS, "epochs": args.epochs}
        result["archive"] = bench_archive(car, env)
        result["pairs"] = [] if args.archive_only else bench_training(car, env, args.pairs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summarize(result)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"bench-{result['date']}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {path}")


def machine():
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import importlib.metadata as md
    return {"cores": os.cpu_count(), "memory_gib": round(mem, 1),
            "python": platform.python_version(), "donkeycar": md.version("donkeycar"),
            "tensorflow": md.version("tensorflow")}


def bench_archive(car, env):
    """Each side ARCHIVE_RUNS times, alternately (the cores on offer change
    from minute to minute); the median run of each is kept."""
    runs = {"make_tub_archive": [], "tar_czf": []}
    for _ in range(ARCHIVE_RUNS):
        runs["make_tub_archive"].append(timed(["./make_tub_archive.sh", "-f"], car, env))
        runs["tar_czf"].append(timed(["tar", "czf", "tar.tgz", "config.py", "myconfig.py",
                                      "data"], car))
    out = {side: sorted(times)[len(times) // 2] for side, times in runs.items()}
    out["runs"] = runs
    dest = os.path.join(car, "..", "x")
    os.makedirs(dest)
    out["tar_xzf"] = timed(["tar", "xzf", os.path.join(car, "wip.tgz"), "-C", dest], car)
    shutil.rmtree(dest)
    code = ("import sys, tempfile; from trainer.core.archive import extract; "
            "extract(sys.argv[1], tempfile.mkdtemp())")
    out["extract"] = timed([PY, "-c", code, os.path.join(car, "wip.tgz")], car,
                           dict(env, PYTHONPATH=ROOT))
    return out


def parallelism(side):
    wall, _, cpu = side
    return cpu / wall


def matched(row):
    """Both sides ran with the same cores on offer (see the docstring)."""
    return abs(parallelism(row["toolkit"]) / parallelism(row["donkey"]) - 1) \
        <= PARALLELISM_MATCH


def bench_training(car, env, pairs):
    rows = []
    for i in range(2 * pairs):
        if sum(r["matched"] for r in rows) >= pairs:
            break
        row = {}
        # Alternate which side goes first, so warm caches favour neither.
        order = ("toolkit", "donkey") if i % 2 == 0 else ("donkey", "toolkit")
        for side in order:
            if side == "toolkit":
                row["toolkit"] = timed(["./local_train.sh", "-f"], car, env)
                with open(os.path.join(car, "models", "pilot-wip.json")) as f:
                    row["steps"] = json.load(f)["seconds"]
            else:
                row["donkey"] = timed([PY, "-m", "donkeycar.management.base", "train",
                                       "--tub", "data", "--model", "models/x.h5",
                                       "--myconfig", DONKEY_MYCONFIG], car, env)
        row["matched"] = matched(row)
        rows.append(row)
        print(f"pair {i + 1}: toolkit {row['toolkit'][0]:.1f} s {row['toolkit'][1]:.0f} MiB"
              f" | donkey train {row['donkey'][0]:.1f} s {row['donkey'][1]:.0f} MiB"
              f"{'' if row['matched'] else ' (unmatched: the cores on offer changed)'}",
              flush=True)
    return rows


def summarize(result):
    a = result["archive"]
    result["archive_ratio"] = round(a["make_tub_archive"][0] / a["tar_czf"][0], 2)
    result["archive_cpu_ratio"] = round(a["make_tub_archive"][2] / a["tar_czf"][2], 2)
    result["extract_ratio"] = round(a["extract"][0] / a["tar_xzf"][0], 2)
    print(f"make_tub_archive.sh {a['make_tub_archive'][0]:.2f} s vs tar czf "
          f"{a['tar_czf'][0]:.2f} s (x{result['archive_ratio']}, CPU seconds "
          f"x{result['archive_cpu_ratio']}; medians of {ARCHIVE_RUNS}; "
          f"{'under' if result['archive_ratio'] < ARCHIVE_LIMIT else 'OVER'} the "
          f"x{ARCHIVE_LIMIT} allowed); extract {a['extract'][0]:.1f} s vs tar xzf "
          f"{a['tar_xzf'][0]:.1f} s (x{result['extract_ratio']})")
    if result["pairs"]:
        summarize_training(result)


def summarize_training(result):
    rows = result["pairs"]
    wall = [r["toolkit"][0] / r["donkey"][0] for r in rows]
    mem = [r["toolkit"][1] / r["donkey"][1] for r in rows]
    cpu = [r["toolkit"][2] / r["donkey"][2] for r in rows]
    kept = [i for i, r in enumerate(rows) if r["matched"]] or list(range(len(rows)))
    med = lambda xs: round(statistics.median(xs), 3)  # noqa: E731
    result["matched_pairs"] = sum(r["matched"] for r in rows)
    result["median_wall_ratio"] = med([wall[i] for i in kept])
    result["median_cpu_ratio"] = med([cpu[i] for i in kept])
    result["median_memory_ratio"] = med([mem[i] for i in kept])
    result["median_wall_ratio_all_pairs"] = med(wall)
    steps = {}
    for i in kept:
        for k, v in rows[i]["steps"].items():
            steps.setdefault(k, []).append(v)
    result["toolkit_steps_median"] = {k: statistics.median(v) for k, v in steps.items()}
    m = result["machine"]
    print(f"\n{result['date']}, {m['cores']} cores, {m['memory_gib']} GiB, Python "
          f"{m['python']}, DonkeyCar {m['donkeycar']}, TF {m['tensorflow']}; "
          f"{result['records']} records, {result['epochs']} epochs")
    print(f"{'pair':>4} {'toolkit s':>10} {'donkey s':>9} {'ratio':>6} "
          f"{'toolkit MiB':>12} {'donkey MiB':>11} {'ratio':>6} {'CPU s ratio':>12} "
          f"{'cores used':>11}")
    for i, (r, w, mm, c) in enumerate(zip(rows, wall, mem, cpu), 1):
        used = f"{parallelism(r['toolkit']):.2f}/{parallelism(r['donkey']):.2f}"
        print(f"{i:>4} {r['toolkit'][0]:>10.1f} {r['donkey'][0]:>9.1f} {w:>6.3f} "
              f"{r['toolkit'][1]:>12.0f} {r['donkey'][1]:>11.0f} {mm:>6.3f} {c:>12.3f} "
              f"{used:>11}{'' if r['matched'] else '  unmatched'}")
    print(f"over {len(kept)} matched pairs: median wall ratio "
          f"{result['median_wall_ratio']}, median peak-memory ratio "
          f"{result['median_memory_ratio']}, median CPU-seconds ratio "
          f"{result['median_cpu_ratio']} (median wall ratio over all "
          f"{len(rows)} pairs: {result['median_wall_ratio_all_pairs']})")
    print("toolkit steps (median s; extract runs beside tensorflow_start, "
          "extract_wait is what it added): " + ", ".join(
              f"{k} {v:.1f}" for k, v in result["toolkit_steps_median"].items()))


if __name__ == "__main__":
    main()
