/**
 * Registers node:zlib's native CRC-32 for the zip reader when the Node entry loads (as onnxruntime-node registers
 * its backend with onnxruntime-common): the browser-safe core keeps its JavaScript CRC, Node gets ~10× the speed.
 * zlib.crc32 exists from Node 20.15; older versions keep the JavaScript one.
 */
import * as zlib from 'node:zlib';

import { registerCrc32 } from './crc32';

const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
if (typeof native === 'function') registerCrc32((bytes) => native(bytes) >>> 0);
