/**
 * The frozen VGG-19 of a perceptual loss, from weights on disk: a given file (torchvision `vgg19-dcbb9e9d.pth` or a
 * safetensors copy with its keys) or the model registry's `vgg19`, from the cache or downloaded once. Shared by every
 * stage that has a VGG term (semi_cut's λ_VGG, the StyleGAN2 fine-tuning's content loss).
 */
import { readWeights } from '@scenimefy/io';

import type { Tf } from '../layers/tf';
import { fetchModel } from '../models/model-cache';
import { findModel } from '../models/model-registry-env';
import { createVgg19Features, type Vgg19Features } from '../networks/vgg19';

export interface Vgg19WeightsOptions {
  /** A weights file with torchvision's key names; default: the registry's `vgg19`. */
  readonly file?: string;
  /** Never download (default: env SCENIMEFY_OFFLINE=1). */
  readonly offline?: boolean;
  /** Where the registry and cache settings are read from (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

/** The VGG-19 feature extractor with the given weights, else the registry's vgg19 (cached or fetched). */
export async function loadVgg19FeaturesFromWeights(tf: Tf, options: Vgg19WeightsOptions = {}): Promise<Vgg19Features> {
  let file = options.file;
  if (file === undefined) {
    const entry = findModel('vgg19', options.env ?? process.env, 'vgg19-features');
    file = (await fetchModel(entry, options.offline !== undefined ? { offline: options.offline } : {})).file;
  }
  return createVgg19Features(tf, (await readWeights(file)).tensors, { source: file });
}
