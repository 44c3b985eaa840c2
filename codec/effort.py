"""Encoder effort (``--effort``): what each level spends on fitting the latents to the image.

Effort 0 codes g_a's latents as they are; each higher level refines them by gradient descent on the
rate-distortion cost before coding (``codec.refine`` runs a ``RefineConfig``).  The decoder and the
format do not depend on it.  This module owns the levels, so the command line can offer them
without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitstream import InputError

__all__ = ["RefineConfig", "EFFORTS", "MAX_EFFORT", "DEFAULT_EFFORT", "SCORE_BELOW", "check_effort", "effort_config"]


@dataclass(frozen=True)
class RefineConfig:
    """One refinement budget per latent tile: at most ``steps`` descent steps (0: no refinement), and
    with a ``patience`` P > 0, fewer: the tile stops once the minimum of the value ``stop_on`` names
    has not fallen for P steps (``codec.stopping``; ES-EMV, Wang et al., TMLR 2023, Algorithm 2).

    ``stop_on``: "cost", the tile's hard-rounded rate-distortion cost (evaluated every
    ``check_every`` steps, and every step with STE, whose forward pass is that cost), or "emv", the
    moving variance of the tile's reconstruction with weight ``emv_alpha``.  The step size and SGA's
    temperature follow the cap, so a stopped tile ran a prefix of the full schedule.

    ``then``: a second phase, run on each tile after this one and from its best latents (its own cap,
    step size, relaxation and stopping rule): a few cheap straight-through steps, say, before SGA."""

    steps: int
    lr: float = 0.01  # the typical move of a step at quality 1, on latents whose quantisation step is 1 ...
    lr_doubling: float = 2.0  # ... doubling every this many quality steps (refine.lr_at)
    relaxation: str = "ste"  # "ste" or "sga"
    optimizer: str = "adam"  # "adam", or "ngd": normalised gradient descent (``refine._Descent``)
    tau_start: float = 0.5  # SGA temperature, annealed geometrically to tau_end
    tau_end: float = 0.05
    check_every: int = 2  # hard-rounded cost evaluated this often (and at the end)
    seed: int = 0  # SGA's Gumbel draws: the same image gives the same file
    patience: int = 0  # steps without a new minimum before a tile stops (0: always run ``steps``)
    stop_on: str = "cost"  # "cost" or "emv": the value whose minimum is watched
    emv_alpha: float = 0.1  # ES-EMV's averaging weight α
    then: RefineConfig | None = None  # the next phase, from this one's best latents

    def __post_init__(self):
        if self.relaxation not in ("ste", "sga"):
            raise ValueError(f"relaxation must be 'ste' or 'sga', not {self.relaxation!r}")
        if self.optimizer not in ("adam", "ngd"):
            raise ValueError(f"optimizer must be 'adam' or 'ngd', not {self.optimizer!r}")
        if self.stop_on not in ("cost", "emv"):
            raise ValueError(f"stop_on must be 'cost' or 'emv', not {self.stop_on!r}")
        if self.steps < 0 or self.patience < 0 or self.check_every < 1:
            raise ValueError("steps and patience must be >= 0, check_every >= 1")
        if not 0 < self.emv_alpha < 1:
            raise ValueError("emv_alpha must be in (0, 1)")
        if self.then is not None and (not isinstance(self.then, RefineConfig) or self.steps == 0):
            raise ValueError("then must be a RefineConfig, after a phase of at least one step")

    def phases(self) -> tuple[RefineConfig, ...]:
        """This phase and the ones after it, in the order they run."""
        return (self,) + (self.then.phases() if self.then is not None else ())

    @property
    def total_steps(self) -> int:
        """The most descent steps of all phases together, per tile."""
        return sum(phase.steps for phase in self.phases())


# What each level runs, per latent tile: a budget, the most steps and a patience.  Effort 1 is a few
# straight-through steps of normalised gradient descent: Adam's sign-like first steps flip latents near a
# rounding boundary whatever their gradient, and on the current weights mostly made the cost worse (the
# backtracking then kept the one-pass latents); moves in proportion to the gradient keep their gain from
# the first step.  Five steps fit effort 1's time (a step costs about as much as one bf16 g_s forward and
# backward).  Efforts 2 and 3 run SGA, whose annealed soft rounding keeps improving where STE
# stalls, under a cap of 100 steps, and stop a tile once its hard-rounded cost has not fallen for the
# patience: a long schedule that stops where the tile stops paying beats a short one run to its end at
# equal CPU time (replays of recorded trajectories, ``benchmarks.effort_trace``).  ES-EMV never stops
# these runs: SGA's temperature and the step size both fall over the cap, so the reconstruction moves less
# at every step and its variance keeps falling.  SGA keeps Adam, and starts from the one-pass latents: with
# normalised steps its hard-rounded cost rose at high quality, and after a few normalised STE steps
# (``RefineConfig.then``) its first steps undid theirs, so a cost plateau stopped it before it gained
# (``benchmarks.effort_schedule``).  Figures and commands: ``benchmarks/results/effort.md``.
EFFORTS = {
    0: RefineConfig(steps=0),
    1: RefineConfig(steps=5, lr=0.01, relaxation="ste", optimizer="ngd"),
    2: RefineConfig(steps=100, lr=0.01, relaxation="sga", check_every=8, patience=8),
    3: RefineConfig(steps=100, lr=0.01, relaxation="sga", check_every=4, patience=24),
}
MAX_EFFORT = max(EFFORTS)
DEFAULT_EFFORT = 0

# The refinement keeps each tile's best latents from the one-pass ones on, by its own measure of the cost
# (bf16 g_s where native, the model's rate).  Where that measure fell by less than this fraction, the
# encoder also codes the one-pass latents and keeps the cheaper real file (``codec.coding``); above it the
# one-pass file is neither coded nor scored, which saves two float32 g_s passes and one entropy coding.
# The own measure overstates the real gain a little, relatively more at small gains; so "never worse than
# effort 0" holds by construction below this margin and by measurement above it
# (``benchmarks.effort_choice``, figures in ``benchmarks/results/effort.md``).
SCORE_BELOW = 0.002


def check_effort(effort) -> int:
    """``effort`` as an int in [0, MAX_EFFORT]; ``InputError`` (a ``ValueError``) otherwise."""
    if isinstance(effort, bool) or not isinstance(effort, int) or effort not in EFFORTS:
        raise InputError(f"effort must be an integer from 0 to {MAX_EFFORT}, got {effort!r}")
    return effort


def effort_config(effort: int) -> RefineConfig:
    """The refinement an ``--effort`` level runs (checked)."""
    return EFFORTS[check_effort(effort)]
