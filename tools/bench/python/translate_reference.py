"""Baseline for `npm run bench`: what a Python user runs today — the reference test.py pipeline (SPEC §8) for
one photo, start-up included. The network is CUT's ResnetGenerator (resnet_9blocks, antialiased, instance norm)
written out here so that the baseline needs only torch, numpy and Pillow; it loads the official state dict.

usage: python translate_reference.py MODEL.pth INPUT OUTPUT.png
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        f = a[:, None] * a[None, :]
        self.register_buffer("filt", (f / f.sum())[None, None].repeat(c, 1, 1, 1))
        self.pad = nn.ReflectionPad2d(1)

    def forward(self, x):
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        a = torch.tensor([1.0, 3.0, 3.0, 1.0])
        f = a[:, None] * a[None, :]
        self.register_buffer("filt", (f / f.sum() * 4)[None, None].repeat(c, 1, 1, 1))
        self.pad = nn.ReplicationPad2d(1)

    def forward(self, x):
        ret = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2, groups=x.shape[1])[:, :, 1:, 1:]
        return ret[:, :, :-1, :-1]


class ResnetBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))

    def forward(self, x):
        return x + self.conv_block(x)


def resnet_generator(ngf=64):
    m = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True),
         nn.Conv2d(ngf, 2 * ngf, 3, padding=1), nn.InstanceNorm2d(2 * ngf), nn.ReLU(True), Downsample(2 * ngf),
         nn.Conv2d(2 * ngf, 4 * ngf, 3, padding=1), nn.InstanceNorm2d(4 * ngf), nn.ReLU(True), Downsample(4 * ngf)]
    m += [ResnetBlock(4 * ngf) for _ in range(9)]
    m += [Upsample(4 * ngf), nn.Conv2d(4 * ngf, 2 * ngf, 3, padding=1), nn.InstanceNorm2d(2 * ngf), nn.ReLU(True),
          Upsample(2 * ngf), nn.Conv2d(2 * ngf, ngf, 3, padding=1), nn.InstanceNorm2d(ngf), nn.ReLU(True),
          nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    return nn.Sequential(*m)


class Net(nn.Module):
    def __init__(self, ngf):
        super().__init__()
        self.model = resnet_generator(ngf)

    def forward(self, x):
        return self.model(x)


def main(model_path, input_path, output_path):
    state = torch.load(model_path, map_location="cpu")
    net = Net(state["model.1.weight"].shape[0])
    net.load_state_dict(state)
    img = Image.open(input_path).convert("RGB")
    w, h = img.size
    nw, nh = int(round(w / 4) * 4), int(round(h / 4) * 4)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    x = (x - 0.5) / 0.5
    with torch.no_grad():
        y = net(x)
    out = ((y[0].clamp(-1, 1).permute(1, 2, 0).numpy() + 1) / 2.0 * 255.0).astype(np.uint8)
    Image.fromarray(out).save(output_path)


if __name__ == "__main__":
    main(*sys.argv[1:4])
