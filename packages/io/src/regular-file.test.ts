import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { makeTempDir, type TempDir } from '@scenimefy/test-utils';

import { sha256File } from './atomic-file';
import { readCheckpointManifest, readContract, readRunManifest } from './contracts/contract-files';
import { datasetContract } from './contracts/dataset-manifest';
import { InputError } from './errors';
import { decodeImage } from './image-decode';
import { assertRegularFile, openRegularFile } from './regular-file';
import { readSafetensors } from './safetensors-file';
import { readTorchCheckpoint, readTorchStateDict } from './torch-checkpoint-file';
import { detectWeightsFormat, readWeights } from './weights-file';

// Issue 12 #5: a FIFO used to hang every reader (opening it for reading waits for a writer), and links to devices
// or nowhere were reported as "no such file". Every io reader that takes a path now says what the path is.
let tmp: TempDir;
let fifo: string;
let zeroLink: string;
let dangling: string;
let socketPath: string;
let server: net.Server;
beforeAll(async () => {
  tmp = await makeTempDir('regular-file');
  fifo = path.join(tmp.dir, 'model.pth');
  execFileSync('mkfifo', [fifo]);
  zeroLink = path.join(tmp.dir, 'zero.safetensors');
  await fsp.symlink('/dev/zero', zeroLink);
  dangling = path.join(tmp.dir, 'gone.png');
  await fsp.symlink(path.join(tmp.dir, 'never-written.png'), dangling);
  socketPath = path.join(tmp.dir, 'sock.json');
  server = net.createServer();
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await tmp.cleanup();
});

/** Every reader that takes a path, as (name, read). */
const READERS: Array<[string, (file: string) => Promise<unknown>]> = [
  ['readSafetensors', (f) => readSafetensors(f)],
  ['readTorchCheckpoint', (f) => readTorchCheckpoint(f)],
  ['readTorchStateDict', (f) => readTorchStateDict(f)],
  ['readWeights', (f) => readWeights(f)],
  ['detectWeightsFormat', (f) => detectWeightsFormat(f)],
  ['decodeImage', (f) => decodeImage(f)],
  ['readContract', (f) => readContract(f, datasetContract)],
  ['readCheckpointManifest', (f) => readCheckpointManifest(f)],
  ['readRunManifest', (f) => readRunManifest(f)],
  ['sha256File', (f) => sha256File(f)],
  ['assertRegularFile', (f) => assertRegularFile(f, 'input')],
];

async function inputError(read: Promise<unknown>): Promise<InputError> {
  const error = await read.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InputError);
  return error as InputError;
}

describe('only regular files are read', () => {
  it.each(READERS)('%s refuses a FIFO at once, saying it is one', async (_name, read) => {
    const error = await inputError(read(fifo));
    expect(error.file).toBe(fifo);
    expect(error.message).toMatch(new RegExp(`^${escapeRegExp(fifo)}: cannot read [^:]+: is a FIFO \\(named pipe\\), not a regular file$`));
  });

  it.each(READERS)('%s refuses a symbolic link to /dev/zero, naming the link target and what it is', async (_name, read) => {
    const error = await inputError(read(zeroLink));
    expect(error.message).toMatch(/: is a symbolic link to "\/dev\/zero", a character device, not a regular file$/);
  });

  it.each(READERS)('%s refuses a socket', async (_name, read) => {
    expect((await inputError(read(socketPath))).message).toMatch(/: is a socket, not a regular file$/);
  });

  it.each(READERS)('%s names a dangling link as one, not as "no such file"', async (_name, read) => {
    const error = await inputError(read(dangling));
    expect(error.message).toMatch(/: is a symbolic link to ".*never-written\.png", which does not exist$/);
  });

  it('assertRegularFile passes a regular file (through a link) and says what a folder or a missing path is', async () => {
    const file = path.join(tmp.dir, 'real.bin');
    await fsp.writeFile(file, 'abc');
    const link = path.join(tmp.dir, 'real-link.bin');
    await fsp.symlink(file, link);
    expect((await assertRegularFile(link)).size).toBe(3);
    expect((await inputError(assertRegularFile(tmp.dir, 'the model'))).message).toBe(
      `${tmp.dir}: cannot read the model: is a folder, not a regular file`,
    );
    const missing = path.join(tmp.dir, 'nope');
    expect((await inputError(assertRegularFile(missing, 'the model'))).message).toBe(`${missing}: cannot read the model: no such file`);
  });

  it('openRegularFile hands back a readable handle for a regular file', async () => {
    const file = path.join(tmp.dir, 'data.txt');
    await fsp.writeFile(file, 'hello');
    const handle = await openRegularFile(file, 'text');
    try {
      expect(await handle.readFile('utf8')).toBe('hello');
    } finally {
      await handle.close();
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
