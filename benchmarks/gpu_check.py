"""The CUDA paths, checked on a GPU machine, and GPU timings of the attacks (the CPU has them in
``attack_timing.py``). Every check runs even if one fails; the results print as a table and go to JSON.

    python benchmarks/gpu_check.py [--json gpu_check.json]

Checks: each attack on the MNIST CNN on CUDA (success, results on the device, per-sample agreement with the
CPU run); Human_Perc_OT on EfficientNet-Lite0; PPGD/LPA with AlexNet's LPIPS and the LPIPS cost on CUDA; the
distance table on CUDA tensors; a bf16-mixed run through the engine (success re-judged in float32); Algorithm 2
and 3 on CUDA; then the attack timings of attack_timing.py on the GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
import traceback

import torch


def check(results: dict, name: str, fn) -> None:
    t0 = time.perf_counter()
    try:
        detail = fn()
        results[name] = {"ok": True, "detail": detail, "s": time.perf_counter() - t0}
    except Exception as e:  # noqa: BLE001 - a report of every check, whatever fails
        results[name] = {"ok": False, "detail": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1500:],
                         "s": time.perf_counter() - t0}
    r = results[name]
    print(f"{'OK  ' if r['ok'] else 'FAIL'} {name:44s} {r['s']:7.1f} s  {r['detail']}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default="gpu_check.json")
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to try the script itself")
    ap.add_argument("--quick", action="store_true", help="leave out PerC-AL's 1000 iterations")
    args = ap.parse_args()
    from imperceptible import attacks as A
    from imperceptible.data import load
    from imperceptible.models import get

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    results: dict = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__}
    print(f"{results['device']}, torch {results['torch']}", flush=True)
    mnist = get("mnist-cnn")
    ds = load("mnist", limit=64)
    ok = mnist.predict(ds.images) == ds.labels
    x, y = ds.images[ok], ds.labels[ok]
    gm = copy.deepcopy(mnist).to(dev)
    xg, yg = x.to(dev), y.to(dev)

    def attack_on_cuda(atk):
        def run():
            r = atk(gm, xg, yg)
            assert r.adv.device.type == dev.type and r.margin.device.type == dev.type
            c = atk(mnist, x, y)
            agree = (r.success.cpu() == c.success).float().mean().item()
            return f"success {r.success_rate:.3f} (CPU {c.success_rate:.3f}), per-sample agreement {agree:.3f}"
        return run

    for atk in (A.HumanPercOT(), A.PGDL2(eps=3.0, alpha=0.25, steps=40), A.PerCAL(max_iterations=50),
                A.PPGD(lpips_model="self"), A.LPA(lpips_model="self"), A.SSIMOneStep(eps=10, kernel_size=7),
                A.PGDOneStep(eps=10)):
        check(results, f"{atk.label()} on the MNIST CNN (cuda)", attack_on_cuda(atk))
    eff = get("efficientnet-lite0").to(dev)
    im = load("imagenet-samples")
    okk = eff.predict(im.images.to(dev), 10).cpu() == im.labels
    xi, yi = im.images[okk].to(dev), im.labels[okk].to(dev)
    check(results, "human-perc-ot on EfficientNet-Lite0 (cuda)",
          lambda: f"success {A.HumanPercOT()(eff, xi, yi).success_rate:.3f} on {len(yi)} photos")
    check(results, "ppgd, lpa with AlexNet LPIPS (cuda)",
          lambda: ", ".join(f"{a.label()} {a(eff, xi[:4], yi[:4]).success_rate:.2f}" for a in (A.PPGD(), A.LPA())))
    check(results, "human-perc-ot[lpips] (cuda)",
          lambda: f"success {A.HumanPercOT(cost='lpips')(eff, xi[:4], yi[:4]).success_rate:.2f}")

    def distances():
        from imperceptible.costs import DistanceMeter

        t = DistanceMeter(image_size=224)((xi[:4] + 0.01).clamp(0, 1), xi[:4])
        return ", ".join(f"{k} {v.mean().item():.4g}" for k, v in t.items() if k in ("lpips_x1000", "fsim_distance",
                                                                                     "ssim_y_distance", "ciede2000"))
    check(results, "distance table on cuda tensors", distances)

    def costs_match_cpu():
        from imperceptible import costs as C

        x0 = im.images[:4]
        x1 = (x0 + 0.01 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
        worst = {}
        for name in ("ssim", "ms-ssim", "ssim-y", "ciede2000", "fsim", "gmsd", "vsi", "haarpsi", "lpips"):
            c = C.get(name)
            ref = c(x1, x0).double()
            got = c.to(dev)(x1.to(dev), x0.to(dev)).double().cpu()
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                amp = c(x1.to(dev), x0.to(dev)).double().cpu()
            worst[name] = max(((got - ref).abs() / ref.abs()).max().item(), ((amp - ref).abs() / ref.abs()).max().item())
        bad = {k: v for k, v in worst.items() if v > 1e-3}
        assert not bad, f"relative differences to the CPU above 1e-3: {bad}"
        return "largest relative difference to the CPU (default TF32, and under bf16 autocast): " + ", ".join(
            f"{k} {v:.1e}" for k, v in worst.items())
    check(results, "costs on cuda equal the CPU's", costs_match_cpu)

    def bf16():
        from imperceptible.data.base import ImageDataset
        from imperceptible.engine import EngineConfig, make_engine
        from imperceptible.evaluate.evaluator import Evaluator
        from imperceptible.runs.attack_run import run_attack
        from imperceptible.runs.rundir import RunDir

        out = {}
        for prec in ("32-true", "bf16-mixed"):
            engine = make_engine(EngineConfig(accelerator="gpu" if cuda else "cpu", precision=prec))
            run = RunDir(tempfile.mkdtemp())
            run_attack(run, "hpo", A.HumanPercOT(), gm, ImageDataset("mnist", x, y, [f"m{i}" for i in range(len(y))], 10),
                       Evaluator(learned=False, saliency=None, ssim_kernel=7), batch_size=32, progress=False,
                       engine=engine)
            out[prec] = sum(r["success"] for r in run.store.rows("hpo")) / len(y)
        return f"success 32-true {out['32-true']:.3f}, bf16-mixed {out['bf16-mixed']:.3f} (judged in float32)"
    check(results, "engine: gpu, bf16-mixed autocast", bf16)

    def dro():
        from imperceptible.dro import KMeansCache, build_adversarial_dataset, sample_model
        from imperceptible.engine import Engine

        class Cuda(Engine):
            @property
            def device(self):
                return dev

        xs, ys = load("mnist", split="train", limit=128).images, load("mnist", split="train", limit=128).labels
        D, m = build_adversarial_dataset(copy.deepcopy(mnist).to(dev), xs, ys, A.PGDL2(eps=2.0, alpha=0.4, steps=5),
                                         epochs=2, batch_size=32, reading="eq3", cache=KMeansCache(xs, ys),
                                         engine=Cuda(), progress=False)
        theta = sample_model(mnist, D, epochs=1, batch_size=32, seed=1, device=dev)
        return f"|D| = {len(D)}, model on {next(theta.parameters()).device}"
    check(results, "Algorithms 2 and 3 on cuda", dro)

    # timings: the attack_timing.py protocol on the GPU, one batch of every correctly classified photo
    from attack_timing import forward_backward_time  # this script's folder is the first import path

    t_fb = forward_backward_time(eff, xi, yi, 5, sync) / len(yi)
    timing = {"forward_backward_s_per_sample": t_fb, "batch": len(yi), "methods": {}}
    for name, atk in [("pgd-l2", A.PGDL2()), ("human-perc-ot", A.HumanPercOT()),
                      ("human-perc-ot[paper]", A.HumanPercOT(preset="paper")),
                      ("perc-al (100 it.)", A.PerCAL(max_iterations=100)),
                      ("perc-al (1000 it.)", A.PerCAL())][: 4 if args.quick else 5]:
        ts, res = [], None
        for _ in range(3 if "1000" not in name else 1):
            sync()
            res = atk(eff, xi, yi)
            sync()
            ts.append(res.time_s)
        t = statistics.median(ts)
        timing["methods"][name] = {"time_s": t, "success_rate": res.success_rate,
                                   "mean_steps": res.steps.float().mean().item(),
                                   "overhead_vs_bare_model": t / max(int(res.steps.sum()) * t_fb, 1e-12)}
    for r in timing["methods"].values():
        r["time_ratio_to_pgd_l2"] = r["time_s"] / timing["methods"]["pgd-l2"]["time_s"]
    results["timing"] = timing
    print(f"\nGPU timing, {len(yi)} photos in one batch; forward+backward {1000 * t_fb:.2f} ms per image")
    for m, r in timing["methods"].items():
        print(f"{m:24s} {r['time_s']:8.3f} s  steps {r['mean_steps']:6.1f}  success {r['success_rate']:.2f}  "
              f"/PGD-L2 {r['time_ratio_to_pgd_l2']:6.2f}  overhead {r['overhead_vs_bare_model']:.2f}")
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2, default=str)


if __name__ == "__main__":
    main()
