"""What a Vertex AI training job costs: machine price per hour times hours.

    hourly("n1-standard-8", ("NVIDIA_TESLA_T4", 1))   # 0.8395 (US$ an hour), or None
    estimate(runs=6, machine=..., accelerator=..., spot=False)   # lines for a dry run
    card_cost(card)                                   # (US$, how it was reckoned) or None

The table is small on purpose: the machines and GPUs this toolkit's defaults
and docs name, on-demand, in us-central1, as the Vertex AI pricing page
lists them for custom training (SOURCE, read 2025-06; Vertex AI charges
about 15% over Compute Engine for the same machine). Other regions cost up
to ~15% more; Spot VMs (-S) much less. Prices change: the page is the
authority, and a machine or GPU not in the table has no estimate rather
than a guessed one. Vertex AI does not bill a job that fails for a reason
other than a cancellation.
"""
from dataclasses import dataclass

SOURCE = "https://cloud.google.com/vertex-ai/pricing (custom training, us-central1, on demand)"
READ = "2025-06"
MACHINES = {            # US$ an hour
    "n1-standard-4": 0.2185,
    "n1-standard-8": 0.4370,
    "n1-standard-16": 0.8741,
    "n1-highmem-8": 0.5442,
}
ACCELERATORS = {        # US$ an hour, each
    "NVIDIA_TESLA_T4": 0.4025,
    "NVIDIA_TESLA_P4": 0.6900,
    "NVIDIA_TESLA_P100": 1.6790,
    "NVIDIA_TESLA_V100": 2.8520,
}
# The time a run is expected to take when nothing better is known: a few
# minutes to get a machine and pull the ~6 GB image (docs/performance.md:
# 2-6 min), then training: docs/cloud.md puts a 10,000-record tub x 20
# epochs on a T4 at about 10 minutes in all. Said as an assumption.
EXPECTED_MINUTES = 15
TIMEOUT_HOURS = 4       # vertex.TIMEOUT: no job bills longer than this


def hourly(machine, accelerator=None):
    """US$ an hour of MACHINE with ACCELERATOR ((type, count) or None), on
    demand; None when either is not in the table."""
    price = MACHINES.get(machine)
    if price is None:
        return None
    if accelerator:
        kind, count = accelerator
        if kind not in ACCELERATORS:
            return None
        price += ACCELERATORS[kind] * int(count)
    return round(price, 4)


def shown(usd):
    return "?" if usd is None else f"US${usd:.2f}"


@dataclass(frozen=True)
class Estimate:
    runs: int
    per_hour: float          # None: not in the table
    minutes: float           # expected per run
    spot: bool

    @property
    def total(self):
        return None if self.per_hour is None else \
            self.runs * self.per_hour * self.minutes / 60

    @property
    def ceiling(self):
        return None if self.per_hour is None else self.runs * self.per_hour * TIMEOUT_HOURS

    def lines(self, machine, accelerator):
        gpu = f" + {accelerator[1]} x {accelerator[0]}" if accelerator else ""
        what = f"{machine}{gpu}"
        if self.per_hour is None:
            return [f"cost: no price for {what} in the toolkit's table "
                    f"(trainer/core/prices.py): see {SOURCE.split(' ')[0]}"]
        lines = [f"cost estimate: {self.runs} runs x {what} at {shown(self.per_hour)} an "
                 f"hour x about {self.minutes:.0f} min each = about {shown(self.total)} "
                 f"in all (at most {shown(self.ceiling)} if every run hit the "
                 f"{TIMEOUT_HOURS}-hour timeout)",
                 f"  prices: {SOURCE}, read {READ}; other regions up to ~15% more",
                 f"  time: an assumption of {EXPECTED_MINUTES} min a run (start-up and "
                 "image pull included); each card records what its run took"]
        if self.spot:
            lines.append("  Spot (-S): the prices above are on-demand; Spot costs much "
                         "less, and a run may be preempted")
        return lines


def estimate(runs, machine, accelerator, spot=False, minutes=EXPECTED_MINUTES):
    return Estimate(runs=runs, per_hour=hourly(machine, accelerator), minutes=minutes,
                    spot=spot)


def card_cost(card):
    """(US$, 'how') for a model card whose run recorded its machine (cloud)
    and its seconds; None when it does not know them."""
    cloud = card.get("cloud") if isinstance(card, dict) else None
    seconds = (card.get("seconds") or {}).get("total") if isinstance(card, dict) else None
    if not isinstance(cloud, dict) or not isinstance(seconds, (int, float)):
        return None
    accelerator = _accelerator(cloud.get("accelerator"))
    per_hour = hourly(cloud.get("machine"), accelerator)
    if per_hour is None:
        return None
    how = "the job's own time at the on-demand price" + (" (Spot: less)"
                                                          if cloud.get("spot") else "")
    return per_hour * seconds / 3600, how


def _accelerator(text):
    """'NVIDIA_TESLA_T4:1' -> ('NVIDIA_TESLA_T4', 1); None for none."""
    if not isinstance(text, str) or ":" not in text:
        return None
    kind, _, count = text.partition(":")
    return (kind, int(count)) if count.isdigit() else None
