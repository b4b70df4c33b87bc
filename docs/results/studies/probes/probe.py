"""Short fixed-step probes of a recipe: val acc / macro-F1 every K steps (no Lightning)."""
import sys, time, json, math
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
from ecgfusion.data.cache import load_beats
from ecgfusion.data.splits import make_split
from ecgfusion.models import create_model
from ecgfusion.training.schedulers import make_schedule
from torchmetrics.functional.classification import multiclass_f1_score
import warnings; warnings.simplefilter("ignore")
args = dict(a.split("=") for a in sys.argv[1:])
name = args.get("model", "cnn_transformer_1d"); steps = int(args.get("steps", 600)); bs = int(args.get("bs", 128))
lr = float(args.get("lr", 1e-3)); sched = args.get("sched", "onecycle"); init = args.get("init", "default")
wd = float(args.get("wd", 0.01)); drop = float(args.get("drop", 0.1)); opt = args.get("opt", "adamw"); wf=float(args.get("wf", 0.1))
tag = args.get("tag", "x")
beats = load_beats("mitdb", "kachuee")
split = make_split(beats, "beat-random", 0)
tr, va = np.asarray(split.train), np.asarray(split.val)
rng = np.random.default_rng(0); va = np.sort(rng.choice(va, 4000, replace=False))
X = torch.from_numpy(beats.signals[tr].astype(np.float32)); Y = torch.from_numpy(beats.labels[tr].astype(np.int64))
Xv = torch.from_numpy(beats.signals[va].astype(np.float32)); Yv = torch.from_numpy(beats.labels[va].astype(np.int64))
torch.manual_seed(0)
kw = {"dropout": drop} if name != "kachuee_cnn" else {}
m = create_model(name, n_classes=5, n_samples=187, sampling_rate=125.0, **kw)
if init == "kaiming":
    for mod in m.modules():
        if isinstance(mod, nn.Conv1d):
            nn.init.kaiming_normal_(mod.weight, a=0.01, nonlinearity="leaky_relu"); nn.init.zeros_(mod.bias)
cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "adamax": torch.optim.Adamax}[opt]
o = cls(m.parameters(), lr=lr, weight_decay=wd)
s = make_schedule(o, sched, steps, warmup_fraction=wf) if sched != "none" else None
g = torch.Generator().manual_seed(0)
def evaluate():
    m.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        p = torch.cat([m(x).scores.float() for x in Xv.split(1000)])
    m.train()
    return float((p.argmax(1) == Yv).float().mean()), float(multiclass_f1_score(p, Yv, 5, average="macro"))
t0 = time.perf_counter(); step = 0; out = []
while step < steps:
    perm = torch.randperm(len(Y), generator=g)
    for idx in perm.split(bs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(m(X[idx]).scores.float(), Y[idx])
        o.zero_grad(); loss.backward()
        if float(args.get('clip', 0)) > 0: torch.nn.utils.clip_grad_norm_(m.parameters(), float(args['clip']))
        o.step()
        if s: s.step()
        step += 1
        if step % int(args.get("every", 150)) == 0 or step == steps:
            acc, f1 = evaluate(); el = time.perf_counter() - t0
            out.append((step, round(el), acc, f1)); print(tag, step, f"{el:.0f}s", f"acc={acc:.4f} f1={f1:.4f} loss={loss.item():.3f}", flush=True)
        if step >= steps: break
json.dump(out, open(f"/tmp/exp/probe_{tag}.json", "w"))
