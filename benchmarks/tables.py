"""Markdown tables (the README's) from a run directory's ``summary.json``: numbers are copied by code, never
by hand.

    python benchmarks/tables.py attacks runs/bench/summary.json      # Tables 1, 2, 6, Figure 7 analogues
    python benchmarks/tables.py ablation runs/ablation/summary.json
    python benchmarks/tables.py onestep runs/onestep/summary.json
    python benchmarks/tables.py timing benchmarks/results/attack_timing.json
    python benchmarks/tables.py fairness runs/fairness/summary.json

A cell marked ``†`` is a measure the method optimises or bounds (its own objective); the others are judges it
does not see.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

#: which measures each method optimises or constrains (prefix of the method key -> summary keys)
OPTIMISES = {
    "human-perc-ot[lpips]": {"lpips_x1000"},
    "human-perc-ot[dists]": {"dists_x1000"},
    "human-perc-ot[pieapp]": set(),
    "human-perc-ot": {"ssim_distance"},
    "pgd-l2": {"l2"},
    "ddn": {"l2"},
    "perc-al": {"ciede2000"},
    "ppgd": {"lpips_x1000"},
    "lpa": {"lpips_x1000"},
    "alma[ssim]": {"ssim_distance"},
}

PERCEPTUAL = [("l2", "L2", 3, 1), ("linf", "Linf", 4, 1), ("ssim_distance", "1-SSIM x1000", 3, 1000),
              ("ms_ssim_distance", "1-MS-SSIM x1000", 3, 1000), ("ciede2000", "CIEDE2000 C2", 1, 1),
              ("lpips_x1000", "LPIPS x1000", 3, 1), ("dists_x1000", "DISTS x1000", 2, 1)]
JUDGES = [("ssim_y_distance", "1-SSIM_Y x1000", 3, 1000), ("fsim_distance", "1-FSIM x1000", 3, 1000),
          ("gmsd", "GMSD x1000", 2, 1000), ("vsi_distance", "1-VSI x1000", 3, 1000),
          ("haarpsi_distance", "1-HaarPSI x1000", 2, 1000)]
SALIENCY = [("saliency_l1", "saliency L1", 1, 1), ("saliency_l2", "saliency L2", 3, 1),
            ("saliency_linf", "saliency Linf", 4, 1), ("saliency_ssim_distance", "saliency 1-SSIM x1000", 3, 1000)]
DEFENSES = [("jpeg_q90", "JPEG 90"), ("jpeg_q75", "JPEG 75"), ("jpeg_q50", "JPEG 50"), ("bits_6", "6 bits"),
            ("bits_5", "5 bits"), ("bits_4", "4 bits")]


def optimised(method: str) -> set[str]:
    """The summary keys ``method`` optimises or bounds (longest matching prefix of :data:`OPTIMISES`)."""
    base = method.split("@")[0]
    for key in sorted(OPTIMISES, key=len, reverse=True):
        if base.startswith(key):
            return OPTIMISES[key]
    return set()


def cell(v, digits: int, scale: float = 1.0, *, mark: bool = False, best: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    s = f"{v * scale:.{digits}f}" + ("†" if mark else "")
    return f"**{s}**" if best else s


def pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def table(header: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _distance_table(methods: dict, cols, *, lead=("success",), unavailable: dict | None = None) -> str:
    """One row per method; a column no method has is dropped and named below the table with the reason."""
    gone = [c for c in cols if all(m.get(c[0]) is None for m in methods.values())]
    cols = [c for c in cols if c not in gone]
    reasons: dict[str, list[str]] = {}
    for key, name, *_ in gone:
        reasons.setdefault((unavailable or {}).get(key, "no value").split(": expected")[0], []).append(name)
    note = "".join(f"\n\n{', '.join(names)}: not computed here ({why})" for why, names in reasons.items())
    if not cols:
        return note.strip()
    lows = {}  # claim (a)'s condition: the lowest among the methods that fool every image they attack
    for key, *_ in cols:
        vals = [m[key] for m in methods.values() if m.get(key) is not None and m.get("success_rate") == 1.0]
        lows[key] = min(vals) if vals else None
    rows = []
    for name, m in methods.items():
        r = [f"`{name}`"] + ([pct(m["success_rate"])] if "success" in lead else [])
        for key, _, digits, scale in cols:
            r.append(cell(m.get(key), digits, scale, mark=key in optimised(name),
                          best=m.get(key) is not None and m.get(key) == lows[key]))
        rows.append(r)
    return table(["method"] + (["success"] if "success" in lead else []) + [c[1] for c in cols], rows) + note


def attacks(s: dict) -> str:
    methods, why = s["methods"], s.get("unavailable", {})
    out = ["Perceptual distances (means over the successfully attacked images; `†` = what the method optimises "
           "or bounds; bold = lowest among the methods with 100% success):", "",
           _distance_table(methods, PERCEPTUAL, unavailable=why), "",
           "Judges no method optimises (x1000):", "", _distance_table(methods, JUDGES, lead=(), unavailable=why), "",
           "Saliency-map distances (OpenCV spectral residual):", "",
           _distance_table(methods, SALIENCY, lead=(), unavailable=why), "",
           "Time (same run):", ""]
    rows = [[f"`{n}`", f"{m['time_s']:.1f}", f"{m['time_per_image_s']:.2f}",
             cell(m.get("mean_steps"), 1), cell(m.get("time_ratio_to_pgd_l2"), 2)] for n, m in methods.items()]
    out += [table(["method", "time (s)", "s / image", "mean steps", "time / PGD-L2"], rows), "",
            "Success after a defense (over the correctly classified images):", ""]
    rows = [[f"`{n}`", pct(m["success_rate"])] + [pct(m.get(f"defense_{d}")) for d, _ in DEFENSES]
            for n, m in methods.items()]
    clean = s.get("clean_defense", {})
    rows.append(["no attack (the defense alone)", "0%"] + [pct(clean.get(d)) for d, _ in DEFENSES])
    out.append(table(["method", "no defense"] + [n for _, n in DEFENSES], rows))
    if s.get("left_out"):
        out += ["", "Left out: " + "; ".join(f"`{k}`: {v}" for k, v in s["left_out"].items())]
    return "\n".join(out)


def timing(s: dict) -> str:
    rows = [[f"`{n}`", f"{m['time_s']:.2f}", f"{m['mean_steps']:.1f}", pct(m["success_rate"]),
             f"{m['time_ratio_to_pgd_l2']:.2f}", f"{m['time_ratio_to_perc_al']:.2f}",
             f"{m['overhead_vs_bare_model']:.2f}"] for n, m in s["methods"].items()]
    head = (f"{s.get('images', s['batch'])} images in batches of {s['batch']}, median of {s['repeats']} interleaved runs; "
            "one forward+backward = "
            f"{1000 * s['forward_backward_s_per_sample']:.1f} ms per image\n\n")
    return head + table(["method", "time (s)", "mean steps", "success", "/ PGD-L2", "/ PerC-AL",
                         "overhead over bare model"], rows)


def ablation(s: dict) -> str:
    cols = [("l2", "L2", 3, 1), ("ssim_distance", "1-SSIM x1000", 3, 1000), ("lpips_x1000", "LPIPS x1000", 3, 1),
            ("dists_x1000", "DISTS x1000", 2, 1), ("ssim_y_distance", "1-SSIM_Y x1000", 3, 1000),
            ("fsim_distance", "1-FSIM x1000", 3, 1000), ("haarpsi_distance", "1-HaarPSI x1000", 2, 1000)]
    rows = [[f"`{n}`", pct(m["success_rate"]), cell(m.get("mean_steps"), 1)]
            + [cell(m.get(k), d, sc) for k, _, d, sc in cols] + [cell(m.get("time_ratio_to_pgd_l2"), 2)]
            for n, m in s["methods"].items()]
    return table(["variant", "success", "steps"] + [c[1] for c in cols] + ["time / PGD-L2"], rows)


def onestep(s: dict) -> str:
    rows = [[f"`{n}`", pct(m["success_rate"]), cell(m["l2"], 2), cell(m["ssim"], 3), cell(m["ms_ssim"], 3),
             pct(m["second_true_rate"]), pct(m["second_follows_rate"]), cell(m["time_s"], 1)]
            for n, m in s["methods"].items()]
    return table(["method", "success", "L2", "SSIM to original", "MS-SSIM", "2nd model reads the true digit",
                  "2nd model follows the attack", "time (s)"], rows)


def fairness(s: dict) -> str:
    pre = s["pretrained"]
    sl = pre["slope"]
    rows = [["pre-trained (theta0)", "1", f"{sl['beta']:.4f}", "", "", pct(pre["accuracy"]),
             cell((pre.get("marker") or {}).get("reliance"), 3), cell((pre.get("texture") or {}).get("reliance"), 3)]]
    for arm, a in s["arms"].items():
        rows.append([f"`{arm}`", f"{a['models']} ({a['replicates']} D)", f"{a['beta_mean']:.4f}",
                     f"{a['beta_ci_low']:.4f} .. {a['beta_ci_high']:.4f}", pct(a["significant_share"]),
                     pct(a["accuracy_mean"]), cell(a.get("marker_reliance_mean"), 3),
                     cell(a.get("texture_reliance_mean"), 3)])
    out = [f"theta0: F({sl['df1']}, {sl['df2']}) = {sl['F']:.2f}, p = {sl['p']:.2g}, {sl['n_groups']} groups.", "",
           table(["arm", "models", "mean slope beta", "95% CI (over D)", "models with p < 0.05", "test accuracy",
                  "marker reliance", "texture reliance"], rows), ""]
    rows = []
    for name, c in s["comparisons"].items():
        w, kind = c.get("d_level_welch"), "D-level Welch"
        if w is None:
            w, kind = c["model_level_welch"], "model-level Welch"
        rows.append([name, f"{w['difference']:+.4f}", f"{w['ci_low']:+.4f} .. {w['ci_high']:+.4f}", kind,
                     f"{w['t']:.2f}", f"{w['df']:.3g}", f"{w['p']:.3g}"])
    out.append(table(["comparison (first minus second)", "difference of mean slopes", "95% CI", "test", "t", "df",
                      "one-sided p"], rows))
    rows = [[f"`{f}`", f"{d['rows_mean']:.0f}", str(d["calls"]["attack_calls_run"]),
             str(d["calls"]["attack_calls_saved"]), pct(d["calls"].get("saved_fraction")),
             cell(d["mechanism"].get("marker_energy_share"), 3), cell(d["mechanism"].get("marker_chance"), 3),
             cell(d["mechanism"].get("texture_energy_share"), 3), cell(d["mechanism"].get("texture_chance"), 3),
             cell(d["mechanism"].get("l2_to_original"), 2),
             cell(d["mechanism"].get("ssim_distance_to_original"), 4), f"{d['time_s']:.0f}"]
            for f, d in s["algorithm2"].items()]
    head = ["Algorithm 2 family", "rows of D (mean)", "attack calls run (all D)", "saved by k-means (all D)",
            "saved share", "perturbation energy on the marker", "(marker share of pixels)", "on the texture",
            "(texture share of pixels)", "L2 to original", "1-SSIM to original", "time (s, all replicates)"]
    out += ["", table(head, rows)]
    out += ["", "Stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in s["stage_times_s"].items())
            + f"; total {s['total_time_s'] / 60:.1f} min"]
    return "\n".join(out)


def generic(s: dict, key: str = "methods") -> str:
    methods = s[key]
    cols = sorted({k for m in methods.values() for k, v in m.items() if isinstance(v, (int, float))})
    rows = [[f"`{n}`"] + [cell(m.get(c), 4) for c in cols] for n, m in methods.items()]
    return table(["method"] + cols, rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=["attacks", "timing", "ablation", "onestep", "fairness"])
    p.add_argument("summary")
    a = p.parse_args()
    s = json.loads(Path(a.summary).read_text())
    kinds = {"attacks": attacks, "timing": timing, "ablation": ablation, "onestep": onestep, "fairness": fairness}
    print(kinds.get(a.kind, generic)(s))


if __name__ == "__main__":
    main()
