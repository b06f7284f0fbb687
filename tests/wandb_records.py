"""What an offline W&B run wrote, read back: its records (run, config,
history, artifacts), as tests/test_tracking.py reads them, for the tests
of the drive's run too.

    records = read_run(run_dir)            # wandb_internal_pb2.Record, in order
    [run] = of_kind(records, "run")
    items(run.config.update)               # {key: value}

The environment that sends a script's runs here: helpers.wandb_env.
"""
import json
import os
import struct
import zlib


def the_run(tmp):
    """The one offline run folder under TMP's WANDB_DIR."""
    runs = tmp / "wandb_dir" / "wandb"
    [run_dir] = [runs / d for d in os.listdir(runs) if d.startswith("offline-run-")]
    return run_dir


def read_run(run_dir):
    """Every record of the run's .wandb file, with wandb's own reader where
    it has one in Python (0.28), else the log format read here (0.29+)."""
    from wandb.proto import wandb_internal_pb2

    [path] = [os.path.join(run_dir, f) for f in os.listdir(run_dir) if f.endswith(".wandb")]
    try:
        from wandb.sdk.internal import datastore
    except ImportError:
        chunks = scan_log(path)
    else:
        store = datastore.DataStore()
        store.open_for_scan(path)
        chunks = iter(store.scan_data, None)
    records = []
    for data in chunks:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        records.append(record)
    return records


def scan_log(path):
    """The records of a .wandb file: a 7-byte W&B header, then LevelDB's log
    format (32 KiB blocks of crc32, length, type FULL/FIRST/MIDDLE/LAST, data)."""
    raw = open(path, "rb").read()
    assert raw[:4] == b":W&B"
    pos, data = 7, b""
    while pos + 7 <= len(raw):
        if 32768 - pos % 32768 < 7:                    # a block's zero trailer
            pos += 32768 - pos % 32768
            continue
        crc, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        chunk = raw[pos + 7:pos + 7 + length]
        assert crc == zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF
        pos += 7 + length
        data = chunk if kind in (1, 2) else data + chunk
        if kind in (1, 4):
            yield data


def of_kind(records, kind):
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def items(record_items):
    """{key: value} of history, summary or config items."""
    return {(it.key or "/".join(it.nested_key)): json.loads(it.value_json)
            for it in record_items}
