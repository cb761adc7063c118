"""PyTorch yardstick for `npm run bench -- --only train`: one `semi_cut` optimize_parameters step (Scenimefy's
models/semi_cut_model.py, SPEC §5–§6) written out here because the reference code is not available offline.

FOR TIMING ONLY. This is a replica, not the reference: it does the same work as the reference step — the same
networks (CUT ResnetGenerator resnet_9blocks with antialiased blur down/upsampling, the antialiased PatchGAN
NLayerDiscriminator for D (3 channels) and D_p (6), PatchSampleF MLP heads netF and netF_s), the same tensors and
the same passes in the same order:

  forward: G(cat[x, y]) -> fake_B, idt_B; G(x_p) -> fake_B_p
  D step:   L_D  = ½[MSE(D(fake_B.detach()), 0) + MSE(D(y), 1)], backward, Adam(D)
  D_p step: L_Dp = ½[MSE(D_p(cat[x_p, fake_B_p].detach()), 0) + MSE(D_p(cat[x_p, y_p]), 1)], backward, Adam(D_p)
  G step (D, D_p frozen): G_GAN + ½(hDCE + hDCE_Y) + SRC + λ_pair·(G_GAN_p + NCE_s), backward, Adam(G), Adam(F), Adam(F_s)

with six encoder passes per G step (SPEC §5.7: enc(fake_B), enc(x), enc(idt_B), enc(y), enc(fake_B_p), enc(y_p),
each through module 16), LSGAN, SRC (JSD of column softmaxes, summed), hDCE with the decoupled logsumexp
gradient (`exp(v − v.detach()) − 1 + CE.detach()`), StylePatchNCE with λ_NCE_s applied twice, dce_idt on, the
curriculum γ at epoch 1 (48) and five Adam(2e-4, (0.5, 0.999)) optimisers. `--check-fixture DIR` replays the
reference training fixture (i2i/train.json: ngf 16, 64 patches, injected patch ids) and prints how far this
replica's losses are from the recorded ones, so the replica's arithmetic can be trusted as a stand-in.

usage: python train_reference.py --size 256 [--steps 3] [--warmup 1] [--threads N]
       python train_reference.py --check-fixture ../shared/fixtures/reference/i2i
Prints one JSON line (times in ms; peak RSS of this process from getrusage).
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from translate_reference import Downsample, resnet_generator  # noqa: E402


class Generator(nn.Module):
    """CUT's ResnetGenerator, with its `encode_only` path: the taps of the listed modules, stopping at the last."""

    def __init__(self, ngf):
        super().__init__()
        self.model = resnet_generator(ngf)

    def forward(self, x, layers=None):
        if layers is None:
            return self.model(x)
        feats = []
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in layers:
                feats.append(x)
            if i == layers[-1]:
                return feats
        return feats


class Discriminator(nn.Module):
    """NLayerDiscriminator, antialiased, instance norm (SPEC §3): a 30×30 patch map for 256²."""

    def __init__(self, input_nc, ndf=64, n_layers=3):
        super().__init__()
        m = [nn.Conv2d(input_nc, ndf, 4, 1, 1), nn.LeakyReLU(0.2, True), Downsample(ndf)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            m += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True),
                  Downsample(ndf * mult)]
        prev, mult = mult, min(2**n_layers, 8)
        m += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True),
              nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*m)

    def forward(self, x):
        return self.model(x)


class PatchSampleF(nn.Module):
    """netF='mlp_sample': per tapped layer Linear(C→nc), ReLU, Linear(nc→nc); the same ids for the batch; L2 rows."""

    def __init__(self, nc=256, init_gain=0.02):
        super().__init__()
        self.nc, self.init_gain, self.mlp_init = nc, init_gain, False

    def create_mlp(self, feats):
        for i, feat in enumerate(feats):
            mlp = nn.Sequential(nn.Linear(feat.shape[1], self.nc), nn.ReLU(), nn.Linear(self.nc, self.nc))
            setattr(self, "mlp_%d" % i, mlp)
        init_weights(self, self.init_gain)
        self.mlp_init = True

    def forward(self, feats, num_patches=256, patch_ids=None, draw=None):
        if not self.mlp_init:
            self.create_mlp(feats)
        return_ids, return_feats = [], []
        for i, feat in enumerate(feats):
            b, h, w = feat.shape[0], feat.shape[2], feat.shape[3]
            feat_reshape = feat.permute(0, 2, 3, 1).flatten(1, 2)
            if patch_ids is not None:
                patch_id = patch_ids[i]
            elif draw is not None:
                patch_id = draw(i)
            else:
                patch_id = torch.randperm(feat_reshape.shape[1])
                patch_id = patch_id[: int(min(num_patches, patch_id.shape[0]))]
            x = getattr(self, "mlp_%d" % i)(feat_reshape[:, patch_id, :].flatten(0, 1))
            return_ids.append(patch_id)
            return_feats.append(x.div(x.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7))
        return return_feats, return_ids


def init_weights(net, gain=0.02):
    """init_type xavier: xavier_normal_(gain) on conv/linear weights, zero biases."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.0)


def mse(pred, real):
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


def patch_nce(q, k, tau):
    """CUT PatchNCELoss, batch 1, negatives from the same image; per-row CE."""
    k = k.detach()
    n, dim = q.shape
    l_pos = (q * k).sum(1, keepdim=True)
    l_neg = torch.bmm(q.view(1, -1, dim), k.view(1, -1, dim).transpose(2, 1))
    l_neg = l_neg.masked_fill(torch.eye(n, dtype=torch.bool)[None], -10.0).view(-1, n)
    out = torch.cat((l_pos, l_neg), 1) / tau
    return F.cross_entropy(out, torch.zeros(n, dtype=torch.long), reduction="none")


def src_loss(q, k, gamma, only_weight=False):
    """SRC_Loss (Hneg_SRC): JSD of the column softmaxes of QQᵀ and KKᵀ (summed), and the hDCE weights from KKᵀ."""
    k = k.detach()
    n, dim = q.shape
    k = k.div(k.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7).view(1, -1, dim)
    spatial_k = torch.bmm(k, k.transpose(2, 1))
    seed = spatial_k.clone().detach().masked_fill(torch.eye(n, dtype=torch.bool)[None], -10.0)
    w = torch.softmax(seed / gamma, dim=2).detach()
    w = w / w.max(dim=2, keepdim=True)[0]
    if only_weight:
        return None, w
    q = q.div(q.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7).view(1, -1, dim)
    p_q = torch.softmax(torch.bmm(q, q.transpose(2, 1)), dim=1)
    p_k = torch.softmax(spatial_k, dim=1).detach()
    m = 0.5 * (p_q + p_k)
    kl = nn.KLDivLoss(reduction="sum", log_target=True)
    return 0.5 * (kl(torch.log(m), torch.log(p_q)) + kl(torch.log(m), torch.log(p_k))), w


def hdce(q, k, weight, tau):
    """hDCE: gradient of mean_i logsumexp_j((s_ij − s⁺_i)/τ) (positive not in the denominator), value = InfoNCE CE."""
    k = k.detach()
    n, dim = q.shape
    l_pos = (q * k).sum(1, keepdim=True)
    l_neg = torch.bmm(q.view(1, -1, dim), k.view(1, -1, dim).transpose(2, 1))
    if weight is not None:
        l_neg = l_neg * weight
    l_neg = l_neg.masked_fill(torch.eye(n, dtype=torch.bool)[None], -10.0).view(-1, n)
    v = torch.logsumexp((l_neg - l_pos) / tau, dim=1)
    ce = F.cross_entropy(torch.cat((l_pos, l_neg), 1) / tau, torch.zeros(n, dtype=torch.long), reduction="none")
    return torch.exp(v - v.detach()).mean() - 1 + ce.detach().mean()


class SemiCut:
    """The semi_cut model's training step, options at the reference defaults plus train.sh's."""

    def __init__(self, ngf=64, ndf=64, nc=256, num_patches=256, epoch=1, draw=None):
        self.netG = Generator(ngf)
        self.netD = Discriminator(3, ndf)
        self.netD_p = Discriminator(6, ndf)
        for net in (self.netG, self.netD, self.netD_p):
            init_weights(net)
        self.netF, self.netF_s = PatchSampleF(nc), PatchSampleF(nc)
        self.num_patches, self.nce_layers, self.nce_T = num_patches, [0, 4, 8, 12, 16], 0.07
        self.lambda_GAN = self.lambda_GAN_p = 1.0
        self.lambda_HDCE, self.lambda_SRC, self.lambda_NCE_s = 0.1, 0.05, 0.05
        # use_curriculum: γ = 50 + (10 − 50)·epoch/20; λ_pair = cos(π/2·20·(epoch−1)) (the reference's formula).
        self.gamma = 50 + (10 - 50) * epoch / 20
        self.lambda_pair = math.cos(math.pi / 2 * 20 * (epoch - 1))
        self.draw = draw  # optional replacement for torch.randperm: draw(head, layer) → ids
        adam = dict(lr=2e-4, betas=(0.5, 0.999))
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), **adam)
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), **adam)
        self.optimizer_D_p = torch.optim.Adam(self.netD_p.parameters(), **adam)
        self.adam = adam
        self.optimizer_F = self.optimizer_F_s = None

    def set_input(self, x, y, x_p, y_p):
        self.real_A, self.real_B, self.real_A_p, self.real_B_p = x, y, x_p, y_p

    def forward(self):
        fake = self.netG(torch.cat((self.real_A, self.real_B), 0))
        self.fake_B, self.idt_B = fake[: self.real_A.size(0)], fake[self.real_A.size(0):]
        self.fake_B_p = self.netG(self.real_A_p)

    def compute_D_loss(self):
        self.loss_D_fake = mse(self.netD(self.fake_B.detach()), False)
        self.loss_D_real = mse(self.netD(self.real_B), True)
        self.loss_D = 0.5 * (self.loss_D_fake + self.loss_D_real)
        return self.loss_D

    def compute_D_p_loss(self):
        self.loss_D_p_fake = mse(self.netD_p(torch.cat((self.real_A_p, self.fake_B_p), 1).detach()), False)
        self.loss_D_p_real = mse(self.netD_p(torch.cat((self.real_A_p, self.real_B_p), 1)), True)
        self.loss_D_p = 0.5 * (self.loss_D_p_fake + self.loss_D_p_real)
        return self.loss_D_p

    def _sample(self, head, name, feats, ids=None):
        draw = None if self.draw is None or ids is not None else (lambda layer: self.draw(name, layer))
        return head(feats, self.num_patches, ids, draw=draw)

    def compute_G_loss(self):
        L = len(self.nce_layers)
        self.loss_G_GAN = mse(self.netD(self.fake_B), True) * self.lambda_GAN
        self.loss_G_GAN_p = mse(self.netD_p(torch.cat((self.real_A_p, self.fake_B_p), 1)), True) * self.lambda_GAN_p
        # Feature pools in the reference's order; netF draws on enc(fake_B), netF_s on enc(y_p).
        feat_q = self.netG(self.fake_B, self.nce_layers)
        feat_k = self.netG(self.real_A, self.nce_layers)
        q_pool, ids = self._sample(self.netF, "F", feat_q)
        k_pool, _ = self._sample(self.netF, "F", feat_k, ids)
        feat_q_idt = self.netG(self.idt_B, self.nce_layers)
        feat_k_idt = self.netG(self.real_B, self.nce_layers)
        q_idt_pool, _ = self._sample(self.netF, "F", feat_q_idt, ids)
        k_idt_pool, _ = self._sample(self.netF, "F", feat_k_idt, ids)
        feat_tgt = self.netG(self.fake_B_p, self.nce_layers)
        feat_src = self.netG(self.real_B_p, self.nce_layers)
        k_s_pool, ids_s = self._sample(self.netF_s, "F_s", feat_src)
        q_s_pool, _ = self._sample(self.netF_s, "F_s", feat_tgt, ids_s)
        nce = sum(patch_nce(q, k, self.nce_T).mean() * self.lambda_NCE_s for q, k in zip(q_s_pool, k_s_pool)) / L
        self.loss_NCE_s = nce * self.lambda_NCE_s  # λ_NCE_s applied twice, as coded (SPEC §5.3)
        total_src, total_hdce, weights = 0.0, 0.0, []
        for q, k in zip(q_pool, k_pool):
            loss, w = src_loss(q, k, self.gamma)
            total_src = total_src + loss * self.lambda_SRC
            weights.append(w)
        self.loss_SRC = total_src / L
        for q, k, w in zip(q_pool, k_pool, weights):
            total_hdce = total_hdce + hdce(q, k, w, self.nce_T) * self.lambda_HDCE
        self.loss_HDCE = total_hdce / L
        weights_idt = [src_loss(q, k, self.gamma, only_weight=True)[1] for q, k in zip(q_idt_pool, k_idt_pool)]
        self.loss_HDCE_Y = sum(hdce(q, k, w, self.nce_T) * self.lambda_HDCE
                               for q, k, w in zip(q_idt_pool, k_idt_pool, weights_idt)) / L
        self.loss_HDCE_both = 0.5 * (self.loss_HDCE + self.loss_HDCE_Y)
        self.loss_G = (self.loss_G_GAN + self.loss_HDCE_both + self.loss_SRC
                       + self.lambda_pair * (self.loss_G_GAN_p + self.loss_NCE_s))
        return self.loss_G

    def data_dependent_initialize(self):
        self.forward()
        self.compute_D_loss().backward()
        self.compute_D_p_loss().backward()
        self.compute_G_loss().backward()
        self.optimizer_F = torch.optim.Adam(self.netF.parameters(), **self.adam)
        self.optimizer_F_s = torch.optim.Adam(self.netF_s.parameters(), **self.adam)

    def optimize_parameters(self):
        self.forward()
        for net in (self.netD, self.netD_p):
            net.requires_grad_(True)
        self.optimizer_D.zero_grad()
        self.compute_D_loss().backward()
        self.optimizer_D.step()
        self.optimizer_D_p.zero_grad()
        self.compute_D_p_loss().backward()
        self.optimizer_D_p.step()
        for net in (self.netD, self.netD_p):
            net.requires_grad_(False)
        for o in (self.optimizer_G, self.optimizer_F, self.optimizer_F_s):
            o.zero_grad()
        self.compute_G_loss().backward()
        self.optimizer_G.step()
        self.optimizer_F.step()
        self.optimizer_F_s.step()

    def losses(self):
        names = ["D_fake", "D_real", "D", "D_p_fake", "D_p_real", "D_p", "G_GAN", "G_GAN_p", "NCE_s", "SRC", "HDCE",
                 "HDCE_Y", "HDCE_both", "G"]
        return {n: float(getattr(self, "loss_" + n).detach()) for n in names}


def synthetic(size, variant):
    """A smooth deterministic image in [−1, 1] (the values do not change the work done)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    t = ((xx * 7 + yy * 13 + variant * 5) % 31 - 15) / 255.0
    img = np.stack([xx / size + t, yy / size - t, 0.5 + 0.25 * np.sin(xx / 17 + variant) * np.cos(yy / 23)])
    return torch.from_numpy(np.clip(img, 0, 1) * 2 - 1)[None].contiguous()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def bench(size, steps, warmup, threads):
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SemiCut()
    model.set_input(*(synthetic(size, v) for v in range(4)))
    t0 = time.perf_counter()
    model.data_dependent_initialize()
    init_ms = (time.perf_counter() - t0) * 1000
    first = None
    for i in range(warmup):
        t = time.perf_counter()
        model.optimize_parameters()
        if i == 0:
            first = (time.perf_counter() - t) * 1000
    times, cpu = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        model.optimize_parameters()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    r = lambda v: round(v, 1)  # noqa: E731
    losses = model.losses()
    return {
        "size": size,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "warmupSteps": warmup,
        "firstStepMs": None if first is None else r(first),
        "stepMedianMs": r(statistics.median(times)),
        "stepMeanMs": r(statistics.mean(times)),
        "stepMinMs": r(min(times)),
        "stepMaxMs": r(max(times)),
        "stepCpuMedianMs": r(statistics.median(cpu)),
        "dataDependentInitMs": r(init_ms),
        "lossG": round(losses["G"], 6),
        "lossD": round(losses["D"], 6),
        "peakRssMb": r(peak_rss_mb()),
    }


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        body = f.read()
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        out[key] = torch.from_numpy(np.frombuffer(body[a:b], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"]).copy())
    return out


def check_fixture(folder):
    """Replays i2i/train.json (init, step 1, step 2) and returns the worst |Δ| per phase against its float32 losses."""
    meta = json.load(open(os.path.join(folder, "train.json")))
    s = meta["effective_settings"]
    io = read_safetensors(os.path.join(folder, "train-io.safetensors"))
    draws = [[io["ids_draw%d_L%d" % (k, layer)].long() for layer in s["nce_layers"]] for k in range(len(meta["draws"]))]
    counter = iter(range(len(draws)))
    current = {}

    def draw(head, layer):
        if layer == 0:
            current["ids"] = draws[next(counter)]
        return current["ids"][layer]

    model = SemiCut(ngf=s["ngf"], ndf=s["ndf"], nc=s["netF_nc"], num_patches=s["num_patches"], epoch=s["epoch"], draw=draw)
    load = lambda name: torch.load(os.path.join(folder, name), map_location="cpu")  # noqa: E731
    model.netG.load_state_dict(load("netG-ngf16.pth"))
    model.netD.load_state_dict(load("netD-ndf16.pth"))
    model.netD_p.load_state_dict(load("netDp-ndf16.pth"))
    model.set_input(*(io[k] for k in ("x", "y", "x_p", "y_p")))
    # Pre-build both heads and load the fixture's lazily built weights (README §6: "pre-build the two heads").
    with torch.no_grad():
        taps = model.netG(model.real_A, model.nce_layers)
    for head, name in ((model.netF, "train-netF-init.pth"), (model.netF_s, "train-netFs-init.pth")):
        head.create_mlp(taps)
        head.load_state_dict(load(name))
    worst = {}

    def compare(phase):
        want = meta["losses"][phase]
        got = model.losses()
        worst[phase] = max(abs(got[n] - want[n]["float32"]) for n in got)

    model.data_dependent_initialize()
    compare("init")
    for phase in ("step1", "step2"):
        model.optimize_parameters()
        compare(phase)
    return {"fixture": folder, "maxAbsLossDiff": {k: float("%.3g" % v) for k, v in worst.items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default for this machine")
    p.add_argument("--check-fixture", metavar="DIR", help="replay i2i/train.json and report loss differences")
    a = p.parse_args()
    if a.check_fixture:
        print(json.dumps(check_fixture(a.check_fixture)))
    else:
        print(json.dumps(bench(a.size, a.steps, a.warmup, a.threads)))


if __name__ == "__main__":
    main()
