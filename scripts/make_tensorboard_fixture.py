"""Fixture for src/metrics/tensorboard.rs: scalars written by PyTorch's SummaryWriter, and
the bytes of their records (every record after the file-version one), so that ours can be
compared byte for byte. Needs `torch` and `tensorboard`:

    .venv/bin/pip install tensorboard
    .venv/bin/python scripts/make_tensorboard_fixture.py   # writes tests/fixtures/tensorboard/scalars.json
"""

import glob
import json
import os
import struct
import tempfile

import tensorboard
import torch
from torch.utils.tensorboard import SummaryWriter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALARS = [
    {"tag": "train/reward", "value": 0.5, "step": 3, "walltime": 1700000000.25},
    {"tag": "train/loss", "value": -1.25e-3, "step": 3, "walltime": 1700000000.25},
    {"tag": "train/completions/mean_length", "value": 187.375, "step": 300, "walltime": 1765000000.5},
]


def records(data):
    """The records of a TFRecord file, as (start, end) byte ranges."""
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack("<Q", data[at : at + 8])
        out.append((at, at + 16 + n))
        at += 16 + n
    return out


def main():
    d = tempfile.mkdtemp()
    w = SummaryWriter(d)
    for s in SCALARS:
        w.add_scalar(s["tag"], s["value"], global_step=s["step"], walltime=s["walltime"])
    w.close()
    (path,) = glob.glob(os.path.join(d, "events*"))
    data = open(path, "rb").read()
    spans = records(data)
    assert len(spans) == 1 + len(SCALARS)
    out = {
        "made_by": "scripts/make_tensorboard_fixture.py",
        "versions": {"torch": torch.__version__, "tensorboard": tensorboard.__version__},
        "scalars": SCALARS,
        "scalar_records_hex": data[spans[1][0] :].hex(),
    }
    dest = os.path.join(REPO, "tests", "fixtures", "tensorboard", "scalars.json")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(dest, REPO))


if __name__ == "__main__":
    main()
