#!/usr/bin/env bash
# Refreshes the small in-repo copies of the reference fixtures (tools/test-utils/fixtures/reference), used by
# tests when neither SCENIMEFY_REFERENCE_FIXTURES nor ../shared/fixtures/reference exists. The full-size
# generator (netG-ngf64, 45 MB) stays in ../shared only; tests that need it skip without it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${SCENIMEFY_REFERENCE_FIXTURES:-$here/../../../shared/fixtures/reference}"
dst="$here/fixtures/reference"
[ -d "$src/i2i" ] || { echo "copy-reference-fixtures: $src has no i2i/ folder" >&2; exit 1; }
rm -rf "$dst"
mkdir -p "$dst/i2i" "$dst/stylegan2"
for f in README.md netG-ngf16.pth netG-ngf16.legacy.pth netG-ngf16.json netG-ngf16-io.json netG-ngf16-io.safetensors \
         netD-ndf16.pth netD-ndf16.json netDp-ndf16.pth netDp-ndf16.json netD-io.json netD-io.safetensors \
         patchF-nc32.pth patchF-io.json patchF-io.safetensors preprocess.json losses.json losses.safetensors; do
  cp "$src/i2i/$f" "$dst/i2i/$f"
done
for f in README.md 000100.pt checkpoint.json g_ema.safetensors d.safetensors; do
  cp "$src/stylegan2/$f" "$dst/stylegan2/$f"
done
chmod -R u+w "$dst"
du -sh "$dst"
