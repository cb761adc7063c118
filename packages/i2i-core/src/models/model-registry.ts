/**
 * The pretrained models `scenimefy` knows by name (SPEC §13): a frozen registry keyed by name, pure data, and the
 * pure rules for a mirror's replacements (a JSON manifest's entries, a download base URL) and for lookups, which
 * see one kind of file at a time (generators unless told otherwise, so a training-only file such as the VGG-19
 * weights is never offered as a translation model) and answer an unknown name with the valid ones. Browser-safe:
 * reading the manifest file and the environment (`SCENIMEFY_MODEL_MANIFEST`, `SCENIMEFY_MODEL_BASE_URL`) is the
 * Node side's (model-registry-env.ts).
 */
import { UsageError, ContractError } from '@scenimefy/io/core';

/**
 * What a registry file is for:
 * - `'generator'`: a Scenimefy generator state dict, what `translate` runs;
 * - `'vgg19-features'`: torchvision's VGG-19 ImageNet weights, of which training reads `features[0..25]` for the
 *   frozen VGG content loss (`createVgg19Features`, `vggPerceptualLoss`). Never a translation model.
 */
export type ModelKind = 'generator' | 'vgg19-features';

export const MODEL_KINDS: readonly ModelKind[] = Object.freeze(['generator', 'vgg19-features'] as const);

export interface ModelEntry {
  /** Registry name, e.g. "shinkai". */
  readonly name: string;
  /** What the file is for; absent means `'generator'` (entries written before kinds existed). */
  readonly kind?: ModelKind;
  readonly description: string;
  /** File name as published, e.g. "Shinkai_net_G.pth". */
  readonly file: string;
  /** Full download URL of the published file. */
  readonly url: string;
  /** Expected sha256 of the file (hex). */
  readonly sha256: string;
  /** Expected size in bytes. */
  readonly bytes: number;
  readonly format: 'pytorch' | 'safetensors' | 'onnx';
  /** Where the file comes from, for humans. */
  readonly source: string;
}

const OFFICIAL_RELEASE = 'https://github.com/Yuxinn-J/Scenimefy/releases/download/v0.1.0/';

export const MODEL_REGISTRY: Readonly<Record<string, ModelEntry>> = Object.freeze({
  shinkai: Object.freeze({
    name: 'shinkai',
    kind: 'generator',
    description: 'official Scenimefy generator, Makoto Shinkai style (ResNet-9, ngf 64)',
    file: 'Shinkai_net_G.pth',
    url: `${OFFICIAL_RELEASE}Shinkai_net_G.pth`,
    // The HF Space's LFS digest of the same file (SPEC §13); a mismatch is reported, never ignored.
    sha256: '3bdeced133287fbb95832f4342aaff399f6f73507b515118918cc27ccd98ad8c',
    bytes: 45_570_633,
    format: 'pytorch',
    source: 'GitHub release v0.1.0 of Yuxinn-J/Scenimefy (also in the HF Space YuxinJ/Scenimefy)',
  }),
  vgg19: Object.freeze({
    name: 'vgg19',
    kind: 'vgg19-features',
    description: 'torchvision VGG-19 ImageNet weights; training reads conv1_1..conv4_4 for the VGG content loss',
    file: 'vgg19-dcbb9e9d.pth',
    url: 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth',
    // torchvision itself only checks that the digest starts with the 8 hex digits in the file name; the full
    // digest and size are those published for this file by independent third-party listings, consistent with
    // that prefix. A mismatch is reported by fetchModel, never ignored.
    sha256: 'dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44',
    bytes: 574_673_361,
    format: 'pytorch',
    source: 'torchvision model zoo (download.pytorch.org), the weights of torchvision.models.vgg19(pretrained=True)',
  }),
});

export const DEFAULT_MODEL = 'shinkai';

/** A mirror's changes to the registry: replacement or extra entries, and a base URL for every download. */
export interface RegistryOverrides {
  /** Entries by name, as parseModelManifest returns them. */
  readonly entries?: Readonly<Record<string, ModelEntry>>;
  /** Files are downloaded from `<baseUrl>/<file>` instead of their own URLs. */
  readonly baseUrl?: string;
}

/** Every entry in force: the built-in ones, replaced or extended by `overrides.entries`, rebased onto `baseUrl`. */
export function registryEntries(overrides: RegistryOverrides = {}): Record<string, ModelEntry> {
  let entries: Record<string, ModelEntry> = { ...MODEL_REGISTRY, ...overrides.entries };
  const base = overrides.baseUrl;
  if (base) {
    const prefix = base.endsWith('/') ? base : `${base}/`;
    entries = Object.fromEntries(Object.entries(entries).map(([k, e]) => [k, { ...e, url: `${prefix}${e.file}` }]));
  }
  return entries;
}

/** The entries of one kind of file (generators by default) among `entries`. */
export function registryOfKind(
  entries: Readonly<Record<string, ModelEntry>>,
  kind: ModelKind = 'generator',
): Readonly<Record<string, ModelEntry>> {
  return Object.freeze(Object.fromEntries(Object.entries(entries).filter(([, e]) => kindOf(e) === kind)));
}

function kindOf(entry: ModelEntry): ModelKind {
  return entry.kind ?? 'generator';
}

/**
 * The entry for `name` among the files of `kind` in `entries`, or a UsageError listing the known names (and
 * saying so when `name` is a file of another kind).
 */
export function findModelIn(entries: Readonly<Record<string, ModelEntry>>, name: string, kind: ModelKind = 'generator'): ModelEntry {
  const entry = entries[name];
  if (entry !== undefined && kindOf(entry) === kind) return entry;
  const known = Object.values(entries)
    .filter((e) => kindOf(e) === kind)
    .map((e) => e.name)
    .sort()
    .join(', ');
  const what = entry === undefined ? `unknown model "${name}"` : `model "${name}" is a ${kindOf(entry)} file, not a ${kind}`;
  throw new UsageError(`${what}; known models: ${known}`);
}

/**
 * The entries of a mirror manifest's text, `{ "models": [{ name, file, url, sha256, bytes, kind?, format?, … }] }`;
 * ContractError naming `file` and the field otherwise.
 */
export function parseModelManifest(text: string, file: string): Record<string, ModelEntry> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ContractError(`cannot read the model manifest (${(error as Error).message})`, { file });
  }
  const models = (raw as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) throw new ContractError('expected an object with a "models" array', { file, field: 'models' });
  const out: Record<string, ModelEntry> = {};
  models.forEach((m: Record<string, unknown>, i) => {
    for (const field of ['name', 'file', 'url', 'sha256'] as const) {
      if (typeof m[field] !== 'string' || m[field] === '') {
        throw new ContractError('must be a non-empty string', { file, field: `models[${i}].${field}` });
      }
    }
    if (!/^[0-9a-f]{64}$/.test(m.sha256 as string)) {
      throw new ContractError('must be 64 lowercase hex digits', { file, field: `models[${i}].sha256` });
    }
    if (typeof m.bytes !== 'number' || !Number.isInteger(m.bytes) || m.bytes <= 0) {
      throw new ContractError('must be a positive integer', { file, field: `models[${i}].bytes` });
    }
    const kind = (m.kind ?? 'generator') as ModelKind;
    if (!MODEL_KINDS.includes(kind)) {
      throw new ContractError(`must be ${MODEL_KINDS.map((k) => `"${k}"`).join(' or ')}`, { file, field: `models[${i}].kind` });
    }
    const format = (m.format ?? 'pytorch') as ModelEntry['format'];
    if (!['pytorch', 'safetensors', 'onnx'].includes(format)) {
      throw new ContractError('must be "pytorch", "safetensors" or "onnx"', { file, field: `models[${i}].format` });
    }
    const name = m.name as string;
    out[name] = Object.freeze({
      name,
      kind,
      description: typeof m.description === 'string' ? m.description : name,
      file: m.file as string,
      url: m.url as string,
      sha256: m.sha256 as string,
      bytes: m.bytes,
      format,
      source: typeof m.source === 'string' ? m.source : `mirror manifest ${file}`,
    });
  });
  return out;
}
