import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { buildSync } from 'esbuild';

import { produceFileAtomic, removeStaleTempFiles, sha256File, sha256Hex, writeFileAtomic } from './atomic-file';
import { InputError } from './errors';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-atomic-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes strings, bytes and chunk streams, replacing an old file whole', async () => {
    const f = path.join(dir, 'a.json');
    await writeFileAtomic(f, 'old');
    await writeFileAtomic(f, new Uint8Array([104, 105]));
    expect(await fsp.readFile(f, 'utf8')).toBe('hi');
    async function* chunks() {
      yield new Uint8Array([1, 2]);
      yield new Uint8Array([3]);
    }
    await writeFileAtomic(f, chunks());
    expect([...(await fsp.readFile(f))]).toEqual([1, 2, 3]);
    expect(readdirSync(dir)).toEqual(['a.json']);
  });

  it('leaves the old file and no temp file when the producer fails midway', async () => {
    const f = path.join(dir, 'b.bin');
    await writeFileAtomic(f, 'keep me');
    async function* failing() {
      yield new Uint8Array([1, 2, 3]);
      throw new Error('disk on fire');
    }
    await expect(writeFileAtomic(f, failing())).rejects.toThrow('disk on fire');
    expect(await fsp.readFile(f, 'utf8')).toBe('keep me');
    expect(readdirSync(dir)).toEqual(['b.bin']);
  });

  it('names the target when its folder does not exist', async () => {
    const f = path.join(dir, 'missing', 'c.txt');
    const err = await writeFileAtomic(f, 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(`${f}: cannot write (ENOENT: folder does not exist)`);
  });

  it('produceFileAtomic renames what the producer wrote and cleans up after a failure', async () => {
    const f = path.join(dir, 'd.txt');
    await produceFileAtomic(f, (tmp) => fsp.writeFile(tmp, 'made'));
    expect(await fsp.readFile(f, 'utf8')).toBe('made');
    await expect(
      produceFileAtomic(f, async (tmp) => {
        await fsp.writeFile(tmp, 'half');
        throw new Error('encoder crashed');
      }),
    ).rejects.toThrow('encoder crashed');
    expect(await fsp.readFile(f, 'utf8')).toBe('made');
    expect(readdirSync(dir)).toEqual(['d.txt']);
  });
});

describe('sha256', () => {
  it('hashes bytes and files to the known digest of "abc"', async () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Hex('abc')).toBe(abc);
    const f = path.join(dir, 'abc.txt');
    await fsp.writeFile(f, 'abc');
    expect(await sha256File(f)).toBe(abc);
  });

  it('names a missing file', async () => {
    const f = path.join(dir, 'nope');
    await expect(sha256File(f)).rejects.toThrow(`${f}: cannot read (ENOENT)`);
  });
});

describe('removeStaleTempFiles (issue 12 #9)', () => {
  /** The pid of a process that has exited (and been reaped), so nothing answers to it now. */
  const deadPid = (): number => {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    return Number(child.stdout);
  };
  const longAgo = new Date(Date.now() - 10 * 60_000);

  it("removes what a killed writer left (its pid is gone), keeps a live writer's file and everything else", async () => {
    const dead = deadPid();
    const stale = path.join(dir, `.out.png.${dead}.0123456789ab.tmp`);
    const staleRun = path.join(dir, `.run.json.${dead}.fedcba987654.tmp`);
    const live = path.join(dir, `.out.png.${process.ppid}.0123456789ab.tmp`);
    const mine = path.join(dir, `.other.png.${process.pid}.0123456789ab.tmp`);
    const fresh = path.join(dir, `.new.png.${dead}.00000000000a.tmp`);
    const unrelated = ['out.png', `.out.png.${dead}.tmp`, `out.png.${dead}.0123456789ab.tmp`, `.x.${dead}.0123456789AB.tmp`];
    for (const f of [stale, staleRun, live, mine, ...unrelated.map((n) => path.join(dir, n))]) {
      await fsp.writeFile(f, 'partial');
      await fsp.utimes(f, longAgo, longAgo);
    }
    await fsp.writeFile(fresh, 'still being written, perhaps by a writer in another pid namespace');
    // A folder and a link with a temp file's name are not temp files.
    await fsp.mkdir(path.join(dir, `.dir.${dead}.0123456789ab.tmp`));
    await fsp.symlink(path.join(dir, 'out.png'), path.join(dir, `.link.${dead}.0123456789ab.tmp`));

    const removed = await removeStaleTempFiles(dir);
    expect(removed.sort()).toEqual([stale, staleRun].sort());
    expect(readdirSync(dir).sort()).toEqual(
      [
        path.basename(live),
        path.basename(mine),
        path.basename(fresh),
        ...unrelated,
        `.dir.${dead}.0123456789ab.tmp`,
        `.link.${dead}.0123456789ab.tmp`,
      ].sort(),
    );
    // Within the grace period a dead writer's file stays; with none it goes.
    expect(await removeStaleTempFiles(dir, { graceMs: 0 })).toEqual([fresh]);
  });

  it('removes the temp file of a writeFileAtomic killed with SIGKILL mid-write, once the writer is gone', async () => {
    // The child writes with this very module (bundled, as the sources are TypeScript) and hangs after one chunk.
    const bundle = path.join(dir, 'atomic-file.cjs');
    buildSync({
      entryPoints: [path.join(__dirname, 'atomic-file.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: bundle,
      logLevel: 'silent',
    });
    const target = path.join(dir, 'out', 'big.bin');
    await fsp.mkdir(path.dirname(target));
    const child = spawn(process.execPath, [
      '-e',
      `require(${JSON.stringify(bundle)}).writeFileAtomic(${JSON.stringify(target)}, (async function* () {
         yield new Uint8Array(1 << 20); await new Promise(() => setInterval(() => {}, 1000)); })())`,
    ]);
    const folder = path.dirname(target);
    for (let waited = 0; readdirSync(folder).length === 0; waited += 20) {
      if (waited > 10_000) throw new Error('the child never started its write');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [leftover] = readdirSync(folder);
    expect(leftover).toMatch(new RegExp(`^\\.big\\.bin\\.${child.pid}\\.[0-9a-f]{12}\\.tmp$`));
    // While the writer lives its file is left alone, however old.
    expect(await removeStaleTempFiles(folder, { graceMs: 0 })).toEqual([]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(await removeStaleTempFiles(folder, { graceMs: 0 })).toEqual([path.join(folder, leftover!)]);
    expect(readdirSync(folder)).toEqual([]);
    expect(await removeStaleTempFiles(path.join(dir, 'missing'))).toEqual([]);
  });
});
