import { availableBackends, describeBackend, loadTf } from '@scenimefy/io';

import type { Output } from '../output';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const sharpVersions = (): Record<string, string> => (require('sharp') as { versions: Record<string, string> }).versions;

export async function doctorCommand(out: Output): Promise<number> {
  const installed = availableBackends();
  const tf = await loadTf({});
  const sharp = sharpVersions();
  const lines = [
    `node ${process.version} on ${process.platform}-${process.arch}`,
    `TF.js backend: ${describeBackend(tf)} — ${tf.reason}`,
    ...tf.skipped.map((s) => `  skipped ${s.candidate}: ${s.reason}`),
    `installed TF.js backends: ${installed.map((b) => `${b.package}@${b.version}`).join(', ') || 'none'}`,
    `sharp ${sharp.sharp ?? '?'} (libvips ${sharp.vips ?? '?'})`,
  ];
  out.result(lines, {
    event: 'doctor',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    tf: { backend: tf.backend, package: tf.package, version: tf.version, threads: tf.threads, reason: tf.reason, skipped: tf.skipped },
    installedBackends: installed.map((b) => ({ package: b.package, version: b.version })),
    sharp,
  });
  return 0;
}
