"""Writes pil-reference.json: what Pillow + numpy (the reference's preprocessing stack) produce for small inputs.

Run by hand, never at test time:  python make-pil-reference.py   (Pillow 12.3.0, numpy 2.x; see README.md).
"""
import base64
import hashlib
import json
import pathlib

import numpy as np
import PIL
from PIL import Image

HERE = pathlib.Path(__file__).resolve().parent


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode('ascii')


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).hexdigest()


def pattern(w: int, h: int) -> np.ndarray:
    """Smooth gradients, a hard-edged block and per-pixel noise: exercises ringing, clipping and rounding."""
    rng = np.random.default_rng(w * 1000 + h)
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), dtype=np.float64)
    img[..., 0] = 255 * x / max(w - 1, 1)
    img[..., 1] = 255 * y / max(h - 1, 1)
    img[..., 2] = 128 + 100 * np.sin(x * 0.9) * np.cos(y * 0.7)
    img[(x >= w // 3) & (x < 2 * w // 3) & (y >= h // 3) & (y < 2 * h // 3)] = [255, 255, 0]
    img += rng.integers(-40, 41, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# (in_w, in_h, out_w, out_h): make_power_2 cases plus strong up/down scaling and one-axis-only resizes.
CASES = [
    (5, 3, 4, 4),
    (10, 6, 8, 8),
    (13, 9, 12, 8),
    (3, 17, 4, 16),
    (22, 16, 24, 16),
    (16, 22, 16, 24),
    (37, 29, 36, 28),
    (31, 23, 64, 48),
    (64, 48, 13, 11),
    (61, 83, 60, 84),
]

resize = []
for in_w, in_h, out_w, out_h in CASES:
    src = pattern(in_w, in_h)
    out = np.asarray(Image.fromarray(src, 'RGB').resize((out_w, out_h), Image.BICUBIC))
    resize.append({
        'in_w': in_w, 'in_h': in_h, 'out_w': out_w, 'out_h': out_h,
        'input_rgb_b64': b64(src), 'output_rgb_b64': b64(out),
    })

rocket_path = HERE / 'rocket.jpg'
rocket = np.asarray(Image.open(rocket_path).convert('RGB'))
rocket_h, rocket_w = rocket.shape[:2]
rocket_resized = {}
for out_w, out_h in [(640, 428), (160, 107)]:
    r = np.asarray(Image.fromarray(rocket, 'RGB').resize((out_w, out_h), Image.BICUBIC))
    rocket_resized[f'{out_w}x{out_h}'] = sha(r)

# torchvision ToTensor + Normalize(0.5, 0.5) on uint8 v: float32 v / 255, then - 0.5, then / 0.5, each rounded to float32.
v = np.arange(256, dtype=np.uint8).astype(np.float32)
t = (v / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
assert t.dtype == np.float32

out = {
    'fixture': 'pil-reference',
    'generated_by': f'make-pil-reference.py with Pillow {PIL.__version__}, numpy {np.__version__}',
    'notes': [
        'resize: Image.fromarray(input, "RGB").resize((out_w, out_h), Image.BICUBIC); input/output are HWC uint8, base64',
        'rocket: np.asarray(Image.open("rocket.jpg").convert("RGB")) (PIL ignores the embedded Adobe RGB ICC profile)',
        'to_tensor_normalize[v] = float32((float32(v / 255) - 0.5) / 0.5), the torchvision ToTensor + Normalize(0.5, 0.5) value for uint8 v',
    ],
    'resize': resize,
    'rocket': {
        'file': 'rocket.jpg',
        'width': rocket_w,
        'height': rocket_h,
        'decoded_rgb_sha256': sha(rocket),
        'decoded_rgb_first_pixels': rocket.reshape(-1)[:12].tolist(),
        'bicubic_resized_rgb_sha256': rocket_resized,
    },
    'to_tensor_normalize': [float(x) for x in t],
}
(HERE / 'pil-reference.json').write_text(json.dumps(out, indent=1) + '\n')
print('wrote', HERE / 'pil-reference.json')
