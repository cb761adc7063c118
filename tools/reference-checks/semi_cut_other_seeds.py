"""Reference data in the layout of fixtures/reference/i2i/train* (what semi-cut.parity.test.ts reads), made with other
seeds, so that the parity test can be run unchanged on data it was not tuned on (issue 12 #18):

    python tools/reference-checks/semi_cut_other_seeds.py /tmp/seeds-17 17
    SCENIMEFY_REFERENCE_FIXTURES=/tmp/seeds-17 npx jest packages/i2i-core/src/train/semi-cut.parity.test.ts

The step is tools/bench/python/train_reference.py's PyTorch replica of semi_cut's optimize_parameters. With offset 0
this script rebuilds the shipped fixture: inputs, initial weights and patch ids bit for bit, D/D_p/F/F_s after step 1
within 2.5e-8, losses within 2.4e-7 and G's step-1 gradient (first8 summaries) within 1.2e-6, on torch 2.13.0+cpu
(the fixture's torch, whose wrong InstanceNorm input gradient for channels-last-strided gradients it therefore shares:
instance_norm_strided_grad.py). Every seed of the recipe (README §1, §3, §6) is shifted by the offset; the JSON
sidecar is the shipped one with the recomputed losses (float32 only; float64 columns null) and G summaries.
Needs torch and safetensors. usage: semi_cut_other_seeds.py OUT_DIR SEED_OFFSET [FIXTURES_DIR]
"""
import copy
import json
import os
import sys

import torch
import torch.nn as nn
from safetensors.torch import safe_open, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench", "python"))
from train_reference import SemiCut  # noqa: E402


def default_init(net, seed):
    """PyTorch's default init of every Conv2d in module order after manual_seed, as the fixture's recipe."""
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.reset_parameters()


def main():
    out_dir, off = sys.argv[1], int(sys.argv[2])
    ref = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "reference")
    ref = os.path.join(ref, "i2i")
    os.makedirs(os.path.join(out_dir, "i2i"), exist_ok=True)
    out = lambda name: os.path.join(out_dir, "i2i", name)  # noqa: E731
    meta = json.load(open(os.path.join(ref, "train.json")))
    s = meta["effective_settings"]
    torch.set_num_threads(1)

    # Patch ids: randperm(H·W)[:num_patches] per layer, draw by draw, from one seeded generator.
    ids_rng = torch.Generator().manual_seed(6003 + off)
    tap_hw = [shape[2] * shape[3] for shape in meta["draws"][0]["tap_shapes"]]
    draws = [[torch.randperm(hw, generator=ids_rng)[: s["num_patches"]] for hw in tap_hw] for _ in meta["draws"]]
    state = {"next": 0}

    def draw(head, layer):
        if layer == 0:
            state["ids"] = draws[state["next"]]
            state["next"] += 1
        return state["ids"][layer]

    model = SemiCut(ngf=s["ngf"], ndf=s["ndf"], nc=s["netF_nc"], num_patches=s["num_patches"], epoch=s["epoch"], draw=draw)
    default_init(model.netG, 1001 + off)
    with torch.no_grad():
        model.netG.model[30].weight.mul_(2.0)
    default_init(model.netD, 3001 + off)
    default_init(model.netD_p, 3002 + off)
    images = {}
    for i, name in enumerate(["x", "y", "x_p", "y_p"]):
        images[name] = torch.rand((1, 3, 64, 64), generator=torch.Generator().manual_seed(6101 + off + i)) * 2 - 1
    model.set_input(images["x"], images["y"], images["x_p"], images["y_p"])
    assert list(torch.load(os.path.join(ref, "netG-ngf16.pth")).keys()) == list(model.netG.state_dict().keys())
    torch.save(model.netG.state_dict(), out("netG-ngf16.pth"))
    torch.save(model.netD.state_dict(), out("netD-ndf16.pth"))
    torch.save(model.netD_p.state_dict(), out("netDp-ndf16.pth"))

    torch.manual_seed(6002 + off)  # the heads' lazy build: netF first, then netF_s
    model.data_dependent_initialize()
    losses = {"init": model.losses()}
    torch.save(model.netF.state_dict(), out("train-netF-init.pth"))
    torch.save(model.netF_s.state_dict(), out("train-netFs-init.pth"))
    g_init = {k: v.detach().clone() for k, v in model.netG.state_dict().items()}
    model.optimize_parameters()
    losses["step1"] = model.losses()
    grads = {k: p.grad.detach().clone() for k, p in model.netG.named_parameters()}
    g_step1 = {k: v.detach().clone() for k, v in model.netG.state_dict().items()}
    with safe_open(os.path.join(ref, "train-step1.safetensors"), "pt") as f:
        keys = list(f.keys())
    nets = {"D": model.netD, "D_p": model.netD_p, "F": model.netF, "F_s": model.netF_s}
    states = {n: {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()} for n, net in nets.items()}
    save_file({key: states[key.split(".", 1)[0]][key.split(".", 1)[1]] for key in keys}, out("train-step1.safetensors"))
    model.optimize_parameters()
    losses["step2"] = model.losses()

    io = {k: v.contiguous() for k, v in images.items()}
    for k, d in enumerate(draws):
        for layer, ids in zip(s["nce_layers"], d):
            io["ids_draw%d_L%d" % (k, layer)] = ids.long().contiguous()
    save_file(io, out("train-io.safetensors"))

    sidecar = copy.deepcopy(meta)
    sidecar["seeds"] = {"offset": off, "G": 1001 + off, "D": 3001 + off, "D_p": 3002 + off, "inputs": 6101 + off,
                        "F": 6002 + off, "ids": 6003 + off}
    for phase, values in losses.items():
        for name, value in values.items():
            sidecar["losses"][phase][name] = {"float32": value, "float64": None, "abs_diff": None}
    summary = lambda t: {"sum": float(t.double().sum()), "l2": float(t.double().norm()), "first8": t.flatten()[:8].tolist()}  # noqa: E731
    for key, entry in sidecar["weights_after_step"]["G"]["tensors"].items():
        if key in grads:
            entry.update(grad_step1=summary(grads[key]), grad_step1_f64=None, after_step1=summary(g_step1[key]),
                         delta_step1=summary(g_step1[key] - g_init[key]), after_step2=None)
    json.dump(sidecar, open(out("train.json"), "w"))
    print(json.dumps({"out": out_dir, "offset": off, "G_step1": losses["step1"]["G"]}))


if __name__ == "__main__":
    main()
