"""drive_report.sh: how a pilot drove a session, from the car folder.

    python -m trainer.car.drive_report -t data/tub_5_24-05-09 [-a takeovers-5]

The summary on the console (car/report.py: DonkeyCar alone), then the page
where matplotlib and Jinja2 are (car/report_page.py), the takeovers'
archive with -a, and a W&B run with WANDB_PROJECT set (car/drive_run.py).
"""
import os
import sys

from trainer.car import drive_run, report, report_page
from trainer.core import bucket, donkey, tubs
from trainer.core.errors import ArgumentParser, UserError, run_main


def parser():
    p = ArgumentParser(prog="drive_report.sh", allow_abbrev=False)
    p.add_argument("-t", "--tub", help="the tub the drive recorded (default: the newest "
                   "in data/)")
    p.add_argument("-o", "--output", help="the page (default: TUB.report.html beside the "
                   "tub)")
    p.add_argument("--no-page", action="store_true", help="the console summary only")
    p.add_argument("-a", "--archive", help="write NAME.tgz of the user's driving after "
                   "each takeover")
    p.add_argument("--models", default=bucket.LOCAL_MODELS, help="where the model's "
                   f"files are, for W&B (default: {bucket.LOCAL_MODELS})")
    p.add_argument("-f", "--force", action="store_true", help="replace the page or archive")
    return p


def newest_tub(folder):
    """The tub in FOLDER DonkeyCar wrote last (AUTO_CREATE_NEW_TUB makes one a
    session), or FOLDER itself when it is the tub."""
    found = tubs.find_tubs(folder)
    newest = max(found, key=lambda t: os.path.getmtime(os.path.join(t, "manifest.json"))
                 if tubs.is_tub(t) else 0)
    if len(found) > 1:
        print(f"the newest tub: {newest} (-t TUB for another)")
    return newest


def main(argv=None):
    args = parser().parse_args(argv)
    donkey.quiet()
    tub = os.path.normpath(args.tub or newest_tub("data"))
    page = args.output or f"{tub}.report.html"
    if not args.no_page and os.path.exists(page) and not args.force:
        raise UserError(f"{page} already exists: pass -f to replace it, or -o another file")
    if args.archive:
        report.takeovers_target(args.archive, args.force)
    drive_run.check()
    drive = report.read(tub)
    numbers = report.summarize(drive)
    for line in report.console(drive, numbers):
        print(line)
    if not args.no_page:
        missing = report_page.missing()
        if missing:
            print(f"no page: {missing}")
        else:
            report_page.write(drive, numbers, page)
            print(f"page: {page}")
    if args.archive:
        report.write_takeovers(drive, args.archive, force=args.force)
    drive_run.log(drive, numbers, args.models)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
