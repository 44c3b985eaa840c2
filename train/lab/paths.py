"""Where the laboratory finds things: the repository, its shipped weights, the data beside it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
WEIGHTS = ROOT / "codec" / "weights"  # the shipped weights
RUN = ROOT / "runs" / "campaign"  # the campaign's run (checkpoint, log): never committed
DATA = ROOT.parent / "shared" / "data" / "train"
KODAK = ROOT.parent / "shared" / "data" / "kodak"
LAB = Path(__file__).resolve().parent
GATE_LIST = LAB / "gate.txt"  # the gate's photos, never trained on
CAMPAIGN_LOG = LAB / "campaign.csv"
