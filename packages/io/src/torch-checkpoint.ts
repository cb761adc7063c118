/**
 * PyTorch checkpoint import (`torch.save` output, `.pth`/`.pt`) without Python: the zip format (PyTorch ≥ 1.6,
 * any archive prefix) and the legacy format, read through the restricted unpickler of torch-pickle.ts. The file is
 * held in memory once; tensors are views of that buffer unless they have to be copied (non-contiguous strides,
 * big-endian data, DEFLATED zip members). This module works on bytes only (browser-safe); reading files is
 * torch-checkpoint-file.ts.
 */

import { ModelFormatError, UsageError, capText, joinCapped, quoteValue } from './errors';
import { DTYPE_BYTES } from './tensor';
import type { DType, TensorData, TensorMap } from './tensor';
import { TorchStorageType, describePythonValue, pickleLimits, unpickle } from './torch-pickle';
import type { PickleLimits, TensorRebuildRequest, UnpickleOptions } from './torch-pickle';
import { isZipArchive, openZipArchive } from './zip-archive';
import type { ZipMember } from './zip-archive';

export interface ReadTorchCheckpointOptions {
  /** Refuse files larger than this many bytes (default {@link TORCH_CHECKPOINT_MAX_BYTES}, 4 GiB). */
  maxBytes?: number;
  /**
   * Refuse to inflate more than this many bytes of DEFLATED zip members in all (default
   * {@link TORCH_CHECKPOINT_MAX_INFLATED_BYTES}, 1 GiB). torch.save stores members uncompressed; a compressed
   * archive can claim any size, so what it inflates to is capped on top of the file's own size. Raise it for a
   * recompressed checkpoint you trust.
   */
  maxInflatedBytes?: number;
  /** Limits of the unpickler in place of PICKLE_LIMITS, field by field (raise them for a file you trust). */
  limits?: Partial<PickleLimits>;
}

/** Largest checkpoint read by default: 4 GiB, the largest buffer Node.js 20 allocates (`buffer.constants.MAX_LENGTH`). */
export const TORCH_CHECKPOINT_MAX_BYTES = 2 ** 32;

/** Default cap on the bytes DEFLATED zip members may inflate to, in all: 1 GiB. */
export const TORCH_CHECKPOINT_MAX_INFLATED_BYTES = 2 ** 30;

/**
 * A DEFLATED storage may inflate to this much beyond the bytes its tensors view. torch.save writes a tensor's whole
 * storage, so a view of a larger storage is legitimate; a compressed storage far larger than anything uses it is a
 * bomb (1 GiB of zeros compresses to 1 MB).
 */
const UNUSED_INFLATED_STORAGE_BYTES = 1024 * 1024;
/** The byteorder member holds "little" or "big". */
const BYTEORDER_MAX_BYTES = 16;

export interface ReadTorchStateDictOptions extends ReadTorchCheckpointOptions {
  /** Take the state dict stored under this top-level key (e.g. `g_ema` in a rosinality StyleGAN2 checkpoint). */
  key?: string;
  /** Remove this leading prefix from tensor names that have it (e.g. `module.` from a DataParallel checkpoint). */
  stripPrefix?: string;
}

export type TorchCheckpointKind = 'zip' | 'legacy';

/** `torch.serialization.MAGIC_NUMBER`, the first pickle of a legacy checkpoint. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
/** Copies (non-contiguous or byte-swapped tensors) may add this much on top of the file's own size. */
const COPY_ALLOWANCE_BYTES = 64 * 1024 * 1024;

/** Every tensor this module produced, so that a state dict can be told from a look-alike object. */
const producedTensors = new WeakSet<object>();

/** True for a tensor read from a PyTorch checkpoint by this module. */
export function isTorchTensor(value: unknown): value is TensorData {
  return typeof value === 'object' && value !== null && producedTensors.has(value);
}

/**
 * Which PyTorch container the bytes start with: `zip` (PK header) or `legacy` (a pickle of torch's magic number;
 * the first 16 bytes suffice for protocol-2 files). `undefined` for anything else.
 */
export function torchCheckpointKind(bytes: Uint8Array): TorchCheckpointKind | undefined {
  if (isZipArchive(bytes)) return 'zip';
  try {
    const { value } = unpickle(bytes, { file: '<sniff>', where: 'magic number pickle' });
    return value === LEGACY_MAGIC ? 'legacy' : undefined;
  } catch {
    return undefined;
  }
}

/** True when the bytes start like a PyTorch checkpoint (zip or legacy). */
export function isTorchCheckpoint(bytes: Uint8Array): boolean {
  return torchCheckpointKind(bytes) !== undefined;
}

/** Parse a `torch.save` file held in memory (see readTorchCheckpoint); tensors are views of `bytes`. */
export function parseTorchCheckpoint(bytes: Uint8Array, file = '<buffer>', options: ReadTorchCheckpointOptions = {}): unknown {
  const fail = (problem: string): never => {
    throw new ModelFormatError(problem, { file });
  };
  if (bytes.byteLength === 0) fail('empty file (0 bytes), not a PyTorch checkpoint');
  const maxBytes = options.maxBytes ?? TORCH_CHECKPOINT_MAX_BYTES;
  if (bytes.byteLength > maxBytes) fail(`${bytes.byteLength} bytes, more than the limit of ${maxBytes}`);
  const maxInflatedBytes = options.maxInflatedBytes ?? TORCH_CHECKPOINT_MAX_INFLATED_BYTES;
  if (!(Number.isSafeInteger(maxInflatedBytes) && maxInflatedBytes >= 0)) {
    throw new UsageError(`maxInflatedBytes must be a non-negative integer, got ${quoteValue(maxInflatedBytes)}`);
  }
  const limits = pickleLimits(options.limits);
  const budget = new CopyBudget(bytes.byteLength + COPY_ALLOWANCE_BYTES, fail);
  if (isZipArchive(bytes)) return parseZipCheckpoint(bytes, file, { maxBytes, maxInflatedBytes, limits }, budget, fail);
  return parseLegacyCheckpoint(bytes, file, limits, budget, fail);
}

/** The state dict inside an unpickled checkpoint (see readTorchStateDict); `file` names it in errors. */
export function stateDictFromCheckpoint(
  checkpoint: unknown,
  file: string,
  options: Pick<ReadTorchStateDictOptions, 'key' | 'stripPrefix'> = {},
): TensorMap {
  const fail = (problem: string): never => {
    throw new ModelFormatError(problem, { file });
  };
  let dict = checkpoint;
  if (options.key !== undefined) {
    if (!(checkpoint instanceof Map)) {
      fail(`has no key ${quoteValue(options.key)}: the checkpoint is ${describePythonValue(checkpoint)}, not a dict`);
    }
    const top = checkpoint as Map<unknown, unknown>;
    if (!top.has(options.key)) {
      fail(`no key ${quoteValue(options.key)} in the checkpoint (top-level keys: ${listKeys(top)})`);
    }
    dict = top.get(options.key);
    if (!isStateDict(dict)) {
      fail(`${quoteValue(options.key)} is not a state dict of tensors (state dicts in this checkpoint: ${listStateDicts(top)})`);
    }
  } else if (!isStateDict(dict)) {
    if (checkpoint instanceof Map) {
      fail(
        `is not a plain state dict (top-level keys: ${listKeys(checkpoint)}; state dicts among them: ${listStateDicts(checkpoint)}); choose one with a key`,
      );
    }
    fail(`is not a state dict: the checkpoint is ${describePythonValue(checkpoint)}`);
  }

  const out: TensorMap = new Map();
  const prefix = options.stripPrefix;
  for (const [name, tensor] of dict as Map<string, TensorData>) {
    const stripped = prefix !== undefined && prefix !== '' && name.startsWith(prefix) ? name.slice(prefix.length) : name;
    if (out.has(stripped)) {
      fail(`stripping ${quoteValue(prefix)} from tensor names makes two tensors named ${quoteValue(stripped)}`);
    }
    out.set(stripped, tensor);
  }
  return out;
}

function isStateDict(value: unknown): value is Map<string, TensorData> {
  if (!(value instanceof Map)) return false;
  for (const [k, v] of value) if (typeof k !== 'string' || !isTorchTensor(v)) return false;
  return true;
}

function listKeys(map: Map<unknown, unknown>): string {
  const names = [...map.keys()].slice(0, 20).map((k) => (typeof k === 'string' ? capText(k) : describePythonValue(k)));
  if (map.size > 20) names.push(`… ${map.size - 20} more`);
  return names.length > 0 ? names.join(', ') : 'none';
}

function listStateDicts(map: Map<unknown, unknown>): string {
  const names = [...map].filter(([k, v]) => typeof k === 'string' && isStateDict(v)).map(([k]) => capText(k as string));
  return names.length > 0 ? names.join(', ') : 'none';
}

type Fail = (problem: string) => never;

/** Caps the bytes spent on tensor copies, so a tiny file cannot expand a zero-stride tensor into gigabytes. */
class CopyBudget {
  private spent = 0;
  constructor(
    private readonly limit: number,
    private readonly fail: Fail,
  ) {}
  spend(bytes: number): void {
    this.spent += bytes;
    if (this.spent > this.limit) {
      this.fail(`tensor copies (non-contiguous or byte-swapped tensors) would exceed ${this.limit} bytes`);
    }
  }
}

/** A storage named by a persistent id; its bytes are found once the container has been read. */
class StorageRef {
  bytes: Uint8Array | undefined;
  constructor(
    readonly key: string,
    readonly type: TorchStorageType,
    /** Elements (bytes for an untyped storage). */
    readonly numel: number,
    /** For a legacy storage view: the root storage it is a slice of, and the element offset into it. */
    readonly root: StorageRef | undefined = undefined,
    readonly elementOffset = 0,
  ) {}
  get byteLength(): number {
    return this.numel * DTYPE_BYTES[this.type.dtype];
  }
}

interface PendingTensor {
  readonly tensor: { dtype: DType; shape: readonly number[]; bytes: Uint8Array };
  readonly request: TensorRebuildRequest;
  readonly storage: StorageRef;
}

/** Collects the tensors of one pickle; their bytes are filled in by `resolve` once every storage has bytes. */
class TensorCollector {
  readonly pending: PendingTensor[] = [];
  constructor(private readonly fail: Fail) {}

  readonly rebuild = (request: TensorRebuildRequest): object => {
    if (!(request.storage instanceof StorageRef)) {
      this.fail(`tensor storage ${describePythonValue(request.storage)} is not a storage from a persistent id`);
    }
    const storage = request.storage as StorageRef;
    if (request.dtype !== undefined && !storage.type.untyped && request.dtype !== storage.type.dtype) {
      this.fail(`a ${request.dtype} tensor cannot be read from ${storage.type.qualifiedName} "${storage.key}"`);
    }
    const dtype = request.dtype ?? storage.type.dtype;
    const tensor = { dtype, shape: Object.freeze([...request.size]), bytes: EMPTY_BYTES };
    this.pending.push({ tensor, request, storage });
    return tensor;
  };

  /** For each storage, the bytes its tensors view: the end of the furthest element any of them addresses. */
  bytesViewed(): Map<StorageRef, number> {
    const viewed = new Map<StorageRef, number>();
    for (const { tensor, request, storage } of this.pending) {
      let last = request.storageOffset;
      let empty = false;
      for (let d = 0; d < request.size.length; d++) {
        if (request.size[d] === 0) empty = true;
        last += (request.size[d]! - 1) * request.stride[d]!;
      }
      const end = empty ? 0 : (last + 1) * DTYPE_BYTES[tensor.dtype];
      viewed.set(storage, Math.max(viewed.get(storage) ?? 0, end));
    }
    return viewed;
  }

  resolve(budget: CopyBudget, bigEndian: boolean): void {
    for (const { tensor, request, storage } of this.pending) {
      tensor.bytes = tensorBytes(storage, request, tensor.dtype, bigEndian, budget, this.fail);
      Object.freeze(tensor);
      producedTensors.add(tensor);
    }
  }
}

const EMPTY_BYTES = new Uint8Array(0);

function tensorBytes(
  storage: StorageRef,
  { storageOffset, size, stride }: TensorRebuildRequest,
  dtype: DType,
  bigEndian: boolean,
  budget: CopyBudget,
  fail: Fail,
): Uint8Array {
  const source = storage.bytes!;
  const es = DTYPE_BYTES[dtype];
  let count = 1;
  let lastIndex = storageOffset;
  for (let d = 0; d < size.length; d++) {
    count *= size[d]!;
    lastIndex += (size[d]! - 1) * stride[d]!;
  }
  const shape = `[${joinCapped(size)}]`;
  if (!Number.isSafeInteger(count * es) || !Number.isSafeInteger((lastIndex + 1) * es)) {
    fail(`tensor of shape ${shape} is too large`);
  }
  if (count === 0) return EMPTY_BYTES;
  if ((lastIndex + 1) * es > source.byteLength) {
    fail(
      `storage ${quoteValue(storage.key)} holds ${source.byteLength} bytes, too short for a ${dtype} tensor of shape ${shape} ` +
        `(stride [${joinCapped(stride)}], offset ${storageOffset}) that needs ${(lastIndex + 1) * es}`,
    );
  }

  let contiguous = true;
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] === 1) continue; // a unit dimension's stride never addresses anything
    if (stride[d] !== expected) contiguous = false;
    expected *= size[d]!;
  }

  let bytes: Uint8Array;
  if (contiguous) {
    bytes = source.subarray(storageOffset * es, (storageOffset + count) * es);
    if (bigEndian && es > 1) {
      budget.spend(bytes.byteLength);
      bytes = new Uint8Array(bytes);
    }
  } else {
    budget.spend(count * es);
    bytes = gatherStrided(source, storageOffset, size, stride, es, count);
  }
  if (bigEndian && es > 1) swapBytesInPlace(bytes, es);
  return bytes;
}

/** Copy a strided view into a new C-contiguous buffer. */
function gatherStrided(
  source: Uint8Array,
  offset: number,
  size: readonly number[],
  stride: readonly number[],
  es: number,
  count: number,
): Uint8Array {
  const out = new Uint8Array(count * es);
  const ndim = size.length;
  const index = new Array<number>(ndim).fill(0);
  const inner = ndim - 1;
  const innerSize = size[inner]!;
  const innerStride = stride[inner]! * es;
  let src = offset * es;
  let dst = 0;
  for (let done = 0; done < count; done += innerSize) {
    for (let i = 0, s = src; i < innerSize; i++, s += innerStride) {
      for (let b = 0; b < es; b++) out[dst++] = source[s + b]!;
    }
    // Odometer over the outer dimensions.
    for (let d = inner - 1; d >= 0; d--) {
      src += stride[d]! * es;
      if (++index[d]! < size[d]!) break;
      src -= stride[d]! * es * size[d]!;
      index[d] = 0;
    }
  }
  return out;
}

function swapBytesInPlace(bytes: Uint8Array, es: number): void {
  for (let at = 0; at < bytes.byteLength; at += es) {
    for (let i = 0, j = es - 1; i < j; i++, j--) {
      const t = bytes[at + i]!;
      bytes[at + i] = bytes[at + j]!;
      bytes[at + j] = t;
    }
  }
}

const STORAGE_TUPLE = "('storage', torch.<Type>Storage, key, location, numel)";

/**
 * Parse a persistent id of the form `('storage', storage_type, key, location, numel[, view_metadata])`: 5 elements
 * in the zip format, 6 in the legacy one. Returns the fields, or fails naming the id.
 */
function parseStoragePid(pid: unknown, legacy: boolean, fail: Fail): { type: TorchStorageType; key: string; numel: number; view: unknown } {
  const expected = legacy ? STORAGE_TUPLE.replace(')', ', view_metadata)') : STORAGE_TUPLE;
  const bad = (): never => fail(`persistent id ${describePythonValue(pid)} is not a storage tuple ${expected}`);
  if (!Array.isArray(pid) || pid.length !== (legacy ? 6 : 5) || pid[0] !== 'storage') bad();
  const [, type, key, location, numel, view] = pid as unknown[];
  if (!(type instanceof TorchStorageType)) bad();
  if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) bad();
  if (typeof location !== 'string' && !(ArrayBuffer.isView(location) && location.byteLength < 64)) bad();
  return { type: type as TorchStorageType, key: key as string, numel: numel as number, view };
}

function storageCache(fail: Fail) {
  const roots = new Map<string, StorageRef>();
  return {
    roots,
    root(key: string, type: TorchStorageType, numel: number): StorageRef {
      const known = roots.get(key);
      if (known === undefined) {
        const ref = new StorageRef(key, type, numel);
        roots.set(key, ref);
        return ref;
      }
      if (known.type.dtype !== type.dtype || known.numel !== numel) {
        fail(
          `storage ${quoteValue(key)} is named twice with different types or sizes ` +
            `(${known.type.qualifiedName} × ${known.numel}, ${type.qualifiedName} × ${numel})`,
        );
      }
      return known;
    },
  };
}

interface ZipLimits {
  maxBytes: number;
  maxInflatedBytes: number;
  limits: PickleLimits;
}

function parseZipCheckpoint(bytes: Uint8Array, file: string, zipLimits: ZipLimits, budget: CopyBudget, fail: Fail): unknown {
  const { maxBytes, maxInflatedBytes, limits } = zipLimits;
  const archive = openZipArchive(bytes, file, { maxInflatedBytes: maxBytes });
  let inflated = 0;
  /** Counts a DEFLATED member against maxInflatedBytes before it is inflated. */
  const inflating = (member: ZipMember): void => {
    if (member.method === 0) return;
    inflated += member.uncompressedSize;
    if (inflated > maxInflatedBytes) {
      fail(
        `compressed zip members would inflate to more than ${maxInflatedBytes} bytes in all (at ${capText(member.name)}); ` +
          'raise maxInflatedBytes to read a recompressed checkpoint you trust',
      );
    }
  };
  const pickles = [...archive.members.keys()].filter((name) => name === 'data.pkl' || name.endsWith('/data.pkl'));
  if (pickles.length === 0) fail('zip archive has no data.pkl member, so it is not a torch.save checkpoint');
  if (pickles.length > 1) fail(`zip archive has ${pickles.length} data.pkl members (${pickles.join(', ')}); expected one`);
  const pklName = pickles[0]!;
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);

  let bigEndian = false;
  const byteorder = archive.members.get(`${prefix}byteorder`);
  if (byteorder !== undefined) {
    if (byteorder.uncompressedSize > BYTEORDER_MAX_BYTES) {
      fail(`${capText(byteorder.name)} holds ${byteorder.uncompressedSize} bytes; it should say "little" or "big"`);
    }
    inflating(byteorder);
    const order = new TextDecoder().decode(archive.read(byteorder)).trim();
    if (order !== 'little' && order !== 'big') fail(`${capText(prefix)}byteorder says ${quoteValue(order)}, not "little" or "big"`);
    bigEndian = order === 'big';
  }

  const storages = storageCache(fail);
  const tensors = new TensorCollector(fail);
  const pklMember = archive.members.get(pklName)!;
  if (pklMember.method !== 0 && pklMember.uncompressedSize > limits.pickleBytes) {
    fail(
      `${capText(pklName)} would inflate to ${pklMember.uncompressedSize} bytes, more than the pickle limit of ` +
        `${limits.pickleBytes} (limits.pickleBytes)`,
    );
  }
  inflating(pklMember);
  const { value } = unpickle(archive.read(pklMember), {
    file,
    where: pklName,
    limits,
    persistentLoad: (pid) => {
      const { type, key, numel } = parseStoragePid(pid, false, fail);
      return storages.root(key, type, numel);
    },
    rebuildTensor: tensors.rebuild,
  } satisfies UnpickleOptions);

  let viewedBytes: Map<StorageRef, number> | undefined;
  for (const storage of storages.roots.values()) {
    const name = `${prefix}data/${storage.key}`;
    const member = archive.members.get(name);
    if (member === undefined) fail(`storage ${quoteValue(storage.key)} is missing from the archive (no member ${capText(name)})`);
    if (member!.method !== 0) {
      viewedBytes ??= tensors.bytesViewed();
      const viewed = viewedBytes.get(storage) ?? 0;
      if (member!.uncompressedSize > viewed + UNUSED_INFLATED_STORAGE_BYTES) {
        fail(
          `storage ${quoteValue(storage.key)} (${capText(name)}) would inflate to ${member!.uncompressedSize} bytes but its tensors ` +
            `view only ${viewed}; a compressed storage is inflated only as far as its tensors use it`,
        );
      }
      inflating(member!);
    }
    const data = archive.read(member!);
    if (data.byteLength < storage.byteLength) {
      fail(
        `storage ${quoteValue(storage.key)} (${capText(name)}) holds ${data.byteLength} bytes, less than its ${storage.numel} × ` +
          `${storage.type.qualifiedName} elements (${storage.byteLength} bytes)`,
      );
    }
    storage.bytes = data.subarray(0, storage.byteLength);
  }
  tensors.resolve(budget, bigEndian);
  return value;
}

function parseLegacyCheckpoint(bytes: Uint8Array, file: string, limits: PickleLimits, budget: CopyBudget, fail: Fail): unknown {
  const notCheckpoint = (): never => fail('not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save pickle)');
  let magic: ReturnType<typeof unpickle>;
  try {
    magic = unpickle(bytes, { file, where: 'magic number pickle', limits });
  } catch {
    return notCheckpoint();
  }
  if (magic.value !== LEGACY_MAGIC) notCheckpoint();
  const protocol = unpickle(bytes, { file, where: 'protocol version pickle', start: magic.end, limits });
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) {
    fail(`unsupported legacy checkpoint protocol ${describePythonValue(protocol.value)} (expected ${LEGACY_PROTOCOL_VERSION})`);
  }
  const sysInfo = unpickle(bytes, { file, where: 'sys_info pickle', start: protocol.end, limits });
  const littleEndian = sysInfo.value instanceof Map ? sysInfo.value.get('little_endian') : undefined;
  if (typeof littleEndian !== 'boolean') fail('legacy checkpoint sys_info does not say little_endian');
  // torch writes legacy storages little-endian whatever the machine; a big-endian writer predates that rule.
  if (!littleEndian) fail('legacy checkpoint was written on a big-endian machine, which is not supported');

  const storages = storageCache(fail);
  const views = new Map<string, StorageRef>();
  const tensors = new TensorCollector(fail);
  const main = unpickle(bytes, {
    file,
    where: 'main pickle',
    start: sysInfo.end,
    limits,
    persistentLoad: (pid) => {
      const { type, key, numel, view } = parseStoragePid(pid, true, fail);
      const root = storages.root(key, type, numel);
      if (view === null) return root;
      // Pre-1.0 storage views: (view_key, element offset, view size) into the root storage.
      if (!Array.isArray(view) || view.length !== 3) fail(`storage view metadata ${describePythonValue(view)} is not (key, offset, size)`);
      const [viewKey, offset, size] = view as unknown[];
      if (typeof viewKey !== 'string' || !isCount(offset) || !isCount(size) || offset + size > numel) {
        fail(`storage view ${describePythonValue(view)} does not fit in storage ${quoteValue(key)} of ${numel} elements`);
      }
      let ref = views.get(viewKey as string);
      if (ref === undefined) {
        ref = new StorageRef(viewKey as string, type, size as number, root, offset as number);
        views.set(viewKey as string, ref);
      }
      return ref;
    },
    rebuildTensor: tensors.rebuild,
  });
  const keyList = unpickle(bytes, { file, where: 'storage key list pickle', start: main.end, limits });
  if (!Array.isArray(keyList.value)) fail('legacy checkpoint storage key list is not a list');

  let at = keyList.end;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keyList.value as unknown[]) {
    const storage = typeof key === 'string' ? storages.roots.get(key) : undefined;
    if (storage === undefined) fail(`storage key ${describePythonValue(key)} is listed but no tensor uses it`);
    const s = storage!;
    if (at + 8 > bytes.byteLength) fail(`truncated legacy checkpoint (no element count for storage ${quoteValue(s.key)} at offset ${at})`);
    const count = view.getBigInt64(at, true);
    if (count !== BigInt(s.numel)) {
      fail(`storage ${quoteValue(s.key)} records ${count} elements where its persistent id says ${s.numel}`);
    }
    const start = at + 8;
    if (start + s.byteLength > bytes.byteLength) {
      fail(
        `truncated legacy checkpoint (storage ${quoteValue(s.key)} needs bytes ${start}..${start + s.byteLength} of a ${bytes.byteLength}-byte file)`,
      );
    }
    if (s.bytes !== undefined) fail(`storage ${quoteValue(s.key)} is listed twice`);
    s.bytes = bytes.subarray(start, start + s.byteLength);
    at = start + s.byteLength;
  }
  for (const s of storages.roots.values()) {
    if (s.bytes === undefined) fail(`storage ${quoteValue(s.key)} is missing from the legacy checkpoint's data section`);
  }
  for (const v of views.values()) {
    const es = DTYPE_BYTES[v.type.dtype];
    v.bytes = v.root!.bytes!.subarray(v.elementOffset * es, (v.elementOffset + v.numel) * es);
  }
  tensors.resolve(budget, false);
  return main.value;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
