"""The report section on training noise: Algorithm 1's numbers over training seeds."""

from __future__ import annotations

from semirobust.empirical.reports.tables import markdown_table
from semirobust.empirical.studies.algorithm1 import INIT_CHOICES
from semirobust.empirical.studies.seed_spread import QUANTITIES, SeedSpread


def seed_section(seeds: SeedSpread, folder: str) -> str:
    """The spread over training seeds of Acc, Acc*, Acc_sr and gAcc under both
    initialisations, and the paired shared-versus-independent comparison of Acc_sr; the
    runs of the seeds after the first are in ``folder`` (relative to the report)."""
    rows = []
    for init in INIT_CHOICES:
        for quantity in QUANTITIES:
            spread = seeds.spread(quantity, init)
            low, high = spread.mean_interval()
            rows.append([init, quantity, *(f"{v:.3f}" for v in spread.values),
                         f"{spread.mean:.3f} [{low:.3f}, {high:.3f}]", f"{spread.sd:.3f}"])
    differences = seeds.paired_difference("Acc_sr")
    higher = sum(d > 0 for d in differences)
    return "\n".join([
        f"## Training noise: {len(seeds.seeds)} training seeds (trial 1)",
        "",
        markdown_table(["init", "quantity", *(f"seed {s}" for s in seeds.seeds),
                        "mean [95% over seeds]", "sd over seeds"], rows),
        "",
        ("Each value is a PGD robust accuracy (an attack value: an upper estimate) of steps 1-3 "
         "of Algorithm 1 trained at that seed; both initialisations share each seed's normal "
         "model, so `Acc` is the same in both. The mean's interval is Student-t 95% over the "
         "training seeds (a statistical estimate of the mean over seeds; with this few seeds it "
         "is wide), the other tables' intervals cover test-set sampling only. "
         f"`Acc_sr` shared minus independent, seed by seed: "
         f"{', '.join(f'{d:+.3f}' for d in differences)} (shared higher on {higher} of "
         f"{len(differences)} seeds). Runs not reported above are in `{folder}/seed_S/` (shared) "
         f"and `{folder}/seed_S/independent-init/`."),
        "",
    ])
