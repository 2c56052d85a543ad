"""The level identity's confusion tables on every real level in ../shared/data (issue 15).

1. Each level alone: every real level (VHM L1-S1, TotalSegmentator L1-S1, TPTBox L3, the five VerSe
   L1s) measured once with its true label, then scored under every label L1-S1
   (anatomy.identity.score_identity): the verdict per label, the correct labels refused, the
   lumbar/sacral confusions refused and the lumbar labels two or more levels off refused (VHM and
   TotalSegmentator), and the adjacent labels flagged.
2. The numbering as a whole (anatomy.find_numbering): the TotalSegmentator labelmap with its label
   names moved by -3..+3 levels (a shifted copy in memory; levels moved past S1 lose their label),
   and the VHM meshes L1-S1 relabelled the same way.
3. What the priors allow a single vertebra: vertebrae drawn from each lumbar level's prior
   (bvn_plan.levels, every measure independent and normal with the prior's SD, no reading error),
   scored under the labels two or more levels off: the share refused per pair. Independence
   overstates the evidence (a large person's widths are all large), so these shares are an upper
   bound of what the same scoring can refuse on real vertebrae.

Run: python benchmarks/identity_table.py [path/to/shared/data]   (prints CPU and wall time: the
figures are the same on any machine, the times are not).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bvn_plan import Vertebra
from bvn_plan.anatomy import find_anatomy, find_numbering, score_identity
from bvn_plan.errors import InputError
from bvn_plan.levels import LEVELS, LUMBAR_LEVELS, SPINE_ORDER, VARIANT_LEVELS, morphometry as level_prior
from bvn_plan.workflow import Labelmap, load_labelmap

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data"
#: The numbering shifts of the second table (levels; +1: every label one level lower than its bone).
TABLE_SHIFTS = (-3, -2, -1, 0, 1, 2, 3)
#: The spine's levels without the variants (T13, L6), in which a shifted label is named.
NORMAL_ORDER = tuple(level for level in SPINE_ORDER if level not in VARIANT_LEVELS)


def real_vertebrae(shared: Path) -> list[tuple[str, str, object]]:
    """(name, true level, loader) for every real level in ``shared`` (../shared/data)."""
    vhm, totalseg = shared / "vhm_lumbar", shared / "totalseg_example" / "totalseg.nii.gz"
    items = [(f"VHM {lv}", lv, lambda lv=lv: Vertebra.load(vhm / f"{lv}_whole.stl", level=lv)) for lv in LEVELS]
    items += [(f"TotalSegmentator {lv}", lv, lambda lv=lv: load_labelmap(totalseg).vertebra(lv)) for lv in LEVELS]
    items.append(("TPTBox L3", "L3", lambda: Vertebra.load(shared / "tptbox_L3" / "L3.stl", level="L3", frame="RAS")))
    items += [(f"VerSe {p.stem}", "L1", lambda p=p: Vertebra.load(p, level="L1", frame="RAS"))
              for p in sorted((shared / "verse_L1").glob("L1_sub-verse*.stl"))]
    return items


def find_real(shared: Path) -> dict[str, tuple[str, object]]:
    """name -> (true level, its Landmarks found with the true label). find_anatomy raising here is a
    correct label refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: (true, find_anatomy(load())) for name, true, load in real_vertebrae(shared)}


def gross(true: str, label: str) -> bool:
    """Two or more levels apart, or one lumbar and the other sacral."""
    return abs(LEVELS.index(true) - LEVELS.index(label)) >= 2 or (true == "S1") != (label == "S1")


@dataclass
class Confusion:
    """Counts of the per-level table: ``[refused, of]`` pairs and the labels not refused."""

    rows: list[str] = field(default_factory=list)
    correct: list[int] = field(default_factory=lambda: [0, 0])
    lumbar_sacral: list[int] = field(default_factory=lambda: [0, 0])
    two_off: list[int] = field(default_factory=lambda: [0, 0])
    adjacent_flagged: list[int] = field(default_factory=lambda: [0, 0])
    adjacent_named_truth: int = 0
    missed: list[str] = field(default_factory=list)


def confusion(found: dict[str, tuple[str, object]]) -> Confusion:
    """Every real level scored under every label: verdicts per row, and the counts (the gross counts
    on the VHM and TotalSegmentator levels, the correct and adjacent ones on all)."""
    out = Confusion()
    for name, (true, landmarks) in found.items():
        identity = landmarks.identity
        row = []
        for label in LEVELS:
            scored = score_identity(label, landmarks.morphometry, identity.whole_sacrum, identity.without_alae)
            refused = scored.verdict == "gross"
            row.append(f"{label}:{scored.verdict[:5]}")
            if label == true:
                out.correct[0] += refused
                out.correct[1] += 1
            elif not gross(true, label):
                out.adjacent_flagged[0] += scored.verdict == "uncertain"
                out.adjacent_flagged[1] += 1
                out.adjacent_named_truth += scored.verdict == "uncertain" and scored.best == true
            elif name.startswith(("VHM", "TotalSegmentator")):
                counts = out.lumbar_sacral if (true == "S1") != (label == "S1") else out.two_off
                counts[0] += refused
                counts[1] += 1
                if not refused:
                    out.missed.append(f"{name} as {label}")
        out.rows.append(f"{name:24s} " + " ".join(row))
    return out


def shifted_labelmap(labelmap: Labelmap, shift: int) -> Labelmap:
    """``labelmap`` with every vertebra label named ``shift`` levels lower (+) or higher (-) than it
    is (NORMAL_ORDER); a label moved past the ends loses its name. The voxels are the same."""
    names = {}
    for value, name in labelmap.names.items():
        level = name.removeprefix("vertebrae_")
        if name.startswith("vertebrae_") and level in NORMAL_ORDER:
            index = NORMAL_ORDER.index(level) + shift
            if 0 <= index < len(NORMAL_ORDER):
                names[value] = f"vertebrae_{NORMAL_ORDER[index]}"
        else:
            names[value] = name
    return Labelmap(labelmap.data, labelmap.affine, names, f"{labelmap.source} (labels moved {shift:+d})")


def labelmap_numbering(labelmap: Labelmap):
    """find_numbering on every L1-S1 level of ``labelmap`` that meshes (fragments are left out)."""
    every = {}
    for level in labelmap.levels():
        try:
            every[level] = labelmap.vertebra(level)
        except InputError:
            continue
    return find_numbering(every, labelmap.spine_levels())


def mesh_numbering(found: dict[str, tuple[str, object]], spine: str, shift: int):
    """The VHM-style numbering table row without re-measuring: the meshes of ``spine`` (names in
    ``found``) relabelled ``shift`` levels lower (+), scored together (anatomy.score_numbering)."""
    from bvn_plan.anatomy import score_numbering

    identities = {}
    for name, (true, landmarks) in found.items():
        index = LEVELS.index(true) + shift
        if name.startswith(spine + " ") and 0 <= index < len(LEVELS):
            identities[LEVELS[index]] = landmarks.identity
    return score_numbering(identities)


#: Vertebrae drawn per level for the third table, and the generator's seed.
PRIOR_DRAWS, PRIOR_SEED = 4000, 15
#: The prior measures drawn (mm, degrees), each the same on both sides.
DRAWN = ("body_height_anterior_mm", "body_height_posterior_mm", "body_width_mm", "body_depth_mm",
         "canal_width_mm", "canal_depth_mm", "pedicle_width_mm", "pedicle_transverse_angle_deg")


def prior_refusals(rng) -> dict[tuple[str, str], float]:
    """(true level, label two or more levels off) -> share of vertebrae drawn from the true level's
    prior that score_identity refuses under that label."""
    shares = {}
    for true in LUMBAR_LEVELS:
        prior = level_prior(true)
        draws = {name: rng.normal(*prior.reference(name), PRIOR_DRAWS) for name in DRAWN}
        for label in (lv for lv in LUMBAR_LEVELS if abs(LEVELS.index(lv) - LEVELS.index(true)) >= 2):
            refused = 0
            for i in range(PRIOR_DRAWS):
                measured = {name: draws[name][i] for name in DRAWN}
                for side in ("left", "right"):
                    measured[f"pedicle_width_{side}_mm"] = measured["pedicle_width_mm"]
                    measured[f"pedicle_transverse_angle_{side}_deg"] = measured["pedicle_transverse_angle_deg"]
                refused += score_identity(label, measured).verdict == "gross"
            shares[true, label] = refused / PRIOR_DRAWS
    return shares


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    wall, cpu = time.perf_counter(), time.process_time()
    found = find_real(shared)
    table = confusion(found)
    print("per level (row: the real level; column: the label it is given):")
    print("\n".join(table.rows))
    print(f"correct labels refused: {table.correct[0]}/{table.correct[1]}")
    print(f"lumbar/sacral confusions refused (VHM, TotalSegmentator): {table.lumbar_sacral[0]}/{table.lumbar_sacral[1]}")
    print(f"lumbar labels two or more levels off refused (VHM, TotalSegmentator): {table.two_off[0]}/{table.two_off[1]}")
    print(f"  not refused: {'; '.join(table.missed) or 'none'}")
    print(f"adjacent labels flagged uncertain: {table.adjacent_flagged[0]}/{table.adjacent_flagged[1]}, "
          f"naming the true level: {table.adjacent_named_truth}")
    print("\nnumbering as a whole (labels moved k levels: the bone labelled X is k levels above X when k > 0):")
    labelmap = load_labelmap(shared / "totalseg_example" / "totalseg.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in TABLE_SHIFTS:
            ts = labelmap_numbering(shifted_labelmap(labelmap, k))
            vhm = mesh_numbering(found, "VHM", k)
            print(f"k {k:+d}: TotalSegmentator labelmap best shift {ts.best_shift:+d} {ts.verdict:10s} "
                  f"(x{ts.ratio:.3g}; scored {', '.join(ts.identities)}) | VHM meshes best shift "
                  f"{vhm.best_shift:+d} {vhm.verdict} (x{vhm.ratio:.3g}; scored {', '.join(vhm.identities)})")
    shares = prior_refusals(np.random.default_rng(PRIOR_SEED))
    print(f"\nwhat the priors allow ({PRIOR_DRAWS} vertebrae drawn per level, measures independent): "
          "labels two or more levels off refused")
    print("; ".join(f"{true} as {label} {100 * share:.0f} %" for (true, label), share in shares.items()))
    print(f"\nCPU {time.process_time() - cpu:.1f} s, wall {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
