"""Minimal repro: torch 2.13.0+cpu's InstanceNorm2d backward is wrong when the incoming gradient is a
channels-last-strided view — exactly what PatchSampleF's `feat.permute(0, 2, 3, 1).flatten(1, 2)` sends back
into the generator's encoder taps. The semi_cut training fixture (i2i/train*.json, made with torch 2.13 CPU)
therefore carries a wrong generator gradient for every contrastive term (SRC, hDCE, hDCE_Y, NCE_s); the
released model was presumably trained with torch 1.8.1 on CUDA (environment.yml; train.sh uses --gpu_ids 0). Scenimefy.js computes the true derivative (checked by
central finite differences). Run: python instance_norm_strided_grad.py (needs torch).
"""
import torch
import torch.nn as nn

torch.manual_seed(0)
print("torch", torch.__version__)
for batch in (1, 2):
    x = torch.randn(batch, 64, 16, 16, dtype=torch.float64, requires_grad=True)
    y = nn.InstanceNorm2d(64)(x)
    g_nhwc = torch.randn(batch, 16, 16, 64, dtype=torch.float64)
    strided = g_nhwc.permute(0, 3, 1, 2)  # same values, channels-last strides
    a = torch.autograd.grad(y, x, strided, retain_graph=True)[0]
    b = torch.autograd.grad(y, x, strided.contiguous())[0]
    print(f"batch {batch}: max |grad(strided) - grad(contiguous)| = {float((a - b).abs().max()):.3g}  (0 when correct)")
