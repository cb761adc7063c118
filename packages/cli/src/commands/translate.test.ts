/**
 * `scenimefy translate` end to end, in-process, with the reference ngf16 generator as the model (random weights:
 * these tests prove the pipeline, not the style). Parity of the pixels with the reference is tested in
 * i2i-core; here: inputs, outputs, names, policies, errors, events and exit statuses.
 */
import { spawnSync } from 'node:child_process';
import { promises as fsp, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';

import sharp from 'sharp';

import { decodeImage } from '@scenimefy/io';
import { describeIfFixture, makeTempDir, referenceFixturePath, type TempDir } from '@scenimefy/test-utils';

import { main } from '../cli';
import { runCli } from '../cli-harness';

const MODEL = 'i2i/netG-ngf16.pth';

async function photo(file: string, width: number, height: number, extra: (s: sharp.Sharp) => sharp.Sharp = (s) => s) {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + Math.floor(i / (width * 3)) * 11) % 256;
  const img = extra(sharp(data, { raw: { width, height, channels: 3 } }));
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await img.toFile(file);
}

/** A PNG signature and a valid IHDR chunk (with its CRC) claiming a size, followed by a stub IDAT and IEND. */
function pngHeaderClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else out.push(path.relative(dir, path.join(d, e.name)).split(path.sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

describeIfFixture(MODEL, 'scenimefy translate', () => {
  const model = referenceFixturePath(MODEL);
  let tmp: TempDir;
  let inDir: string;
  let outDir: string;
  beforeEach(async () => {
    tmp = await makeTempDir('translate');
    inDir = path.join(tmp.dir, 'in');
    outDir = path.join(tmp.dir, 'out');
    await fsp.mkdir(inDir);
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('translates files and folders with predictable names, NDJSON events and a summary', async () => {
    await photo(path.join(inDir, 'a.jpg'), 64, 48);
    await photo(path.join(inDir, 'sub', 'b.png'), 40, 40);
    await photo(path.join(tmp.dir, 'single.webp'), 36, 52);
    const r = await runCli(['translate', inDir, path.join(tmp.dir, 'single.webp'), '-o', outDir, '-m', model, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(listFiles(outDir)).toEqual(['a.png', 'single.png', 'sub/b.png']);
    const events = r.events();
    expect(events.map((e) => e.event)).toEqual(['model', 'start', 'translated', 'translated', 'translated', 'summary']);
    expect(events.at(-1)).toMatchObject({ translated: 3, failed: 0, skipped: 0 });
    const a = await decodeImage(path.join(outDir, 'a.png'));
    expect([a.width, a.height]).toEqual([64, 48]);
    // 36×52 is already a multiple of 4; 40×40 too.
    const single = await decodeImage(path.join(outDir, 'single.png'));
    expect([single.width, single.height]).toEqual([36, 52]);
  });

  it('rounds sizes as the reference does and can resize back, cap the long side, and write jpg/webp', async () => {
    await photo(path.join(inDir, 'odd.png'), 66, 50); // 66/4 = 16.5 → 16 (half to even) → 64; 50/4 = 12.5 → 12 → 48
    let r = await runCli(['translate', path.join(inDir, 'odd.png'), '-o', outDir, '-m', model, '--json']);
    expect(r.code).toBe(0);
    expect(r.events().find((e) => e.event === 'translated')).toMatchObject({ width: 64, height: 48, modelWidth: 64, modelHeight: 48 });
    r = await runCli(['translate', path.join(inDir, 'odd.png'), '-o', outDir, '-m', model, '--resize-back', '-f', 'jpg', '--json']);
    expect(r.events().find((e) => e.event === 'translated')).toMatchObject({ width: 66, height: 50, modelWidth: 64, modelHeight: 48 });
    r = await runCli(['translate', path.join(inDir, 'odd.png'), '-o', outDir, '-m', model, '--max-side', '32', '-f', 'webp', '--json']);
    expect(r.events().find((e) => e.event === 'translated')).toMatchObject({ modelWidth: 32, modelHeight: 24 });
    expect(listFiles(outDir)).toEqual(['odd.jpg', 'odd.png', 'odd.webp']);
    expect((await sharp(path.join(outDir, 'odd.jpg')).metadata()).format).toBe('jpeg');
  });

  it('applies the overwrite policy: fail (default), skip, overwrite', async () => {
    await photo(path.join(inDir, 'a.png'), 32, 32);
    const args = ['translate', path.join(inDir, 'a.png'), '-o', outDir, '-m', model];
    expect((await runCli(args)).code).toBe(0);
    const before = await fsp.readFile(path.join(outDir, 'a.png'));
    await fsp.writeFile(path.join(outDir, 'a.png'), 'mine');
    const fail = await runCli(args);
    expect(fail.code).toBe(1);
    expect(fail.stderr).toContain(`scenimefy: ${path.join(outDir, 'a.png')}: already exists (use --if-exists skip or overwrite)\n`);
    expect(await fsp.readFile(path.join(outDir, 'a.png'), 'utf8')).toBe('mine');
    const skip = await runCli([...args, '--if-exists', 'skip', '--json']);
    expect(skip.code).toBe(0);
    expect(skip.events().at(-1)).toMatchObject({ skipped: 1, translated: 0 });
    const over = await runCli([...args, '--if-exists', 'overwrite']);
    expect(over.code).toBe(0);
    expect((await fsp.readFile(path.join(outDir, 'a.png'))).equals(before)).toBe(true);
  });

  it('reports each bad input in one line, goes on with the rest, exits 1 and leaves no partial files', async () => {
    await photo(path.join(inDir, 'good.png'), 32, 32);
    await fsp.writeFile(path.join(inDir, 'empty.jpg'), '');
    await fsp.writeFile(path.join(inDir, 'text.png'), 'this is not a png\n');
    const jpeg = await sharp(Buffer.alloc(64 * 64 * 3, 128), { raw: { width: 64, height: 64, channels: 3 } })
      .jpeg()
      .toBuffer();
    await fsp.writeFile(path.join(inDir, 'truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    await photo(path.join(inDir, 'tiny.png'), 1, 1);
    // A PNG header that claims 100000×100000 pixels: refused before any decoding.
    await fsp.writeFile(path.join(inDir, 'huge.png'), pngHeaderClaiming(100_000, 100_000));
    const r = await runCli(['translate', inDir, '-o', outDir, '-m', model, '--json']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l).toMatch(/^scenimefy: .*in\/(empty|text|truncated|tiny|huge)\.(jpg|png): .+$/);
    expect(r.stderr).toContain('huge.png: 100000×100000 pixels exceeds the decode limit');
    expect(r.stderr).toContain('tiny.png: image too small');
    expect(r.events().at(-1)).toMatchObject({ translated: 1, failed: 5 });
    expect(listFiles(outDir)).toEqual(['good.png']);
  });

  it('refuses an image over --max-memory from its header, names the flag, and goes on with the rest (issue 12 #7)', async () => {
    await photo(path.join(inDir, 'good.png'), 32, 32);
    // 12000² needs ≈ 18.5 GiB in tiles with the ngf-16 fixture model: over a 16 GiB budget, within a 20 GiB one.
    await fsp.writeFile(path.join(inDir, 'big.png'), pngHeaderClaiming(12_000, 12_000));
    const r = await runCli(['translate', inDir, '-o', outDir, '-m', model, '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^scenimefy: .*in\/big\.png: 12000×12000 pixels would need about 18\.5 GiB .* raise the limit \(maxMemory; --max-memory in the CLI\)$/,
      ),
    ]);
    expect(listFiles(outDir)).toEqual(['good.png']);
    // With the limit raised the header passes the budget and the decoder finds no pixel data behind it.
    const raised = await runCli(['translate', path.join(inDir, 'big.png'), '-o', outDir, '-m', model, '--max-memory', '20']);
    expect(raised.code).toBe(1);
    expect(raised.stderr).toMatch(/big\.png: not a decodable image/);
  });

  it('handles CMYK, 16-bit, alpha, EXIF rotation and unicode names', async () => {
    await photo(path.join(inDir, 'cmyk.jpg'), 32, 32, (s) => s.toColourspace('cmyk').jpeg());
    await photo(path.join(inDir, 'deep.png'), 32, 32, (s) => s.toColourspace('rgb16').png());
    await photo(path.join(inDir, 'alpha.png'), 32, 32, (s) => s.ensureAlpha(0.5).png());
    await photo(path.join(inDir, 'rotated.jpg'), 48, 32, (s) => s.withMetadata({ orientation: 6 }).jpeg());
    await photo(path.join(inDir, 'фото 写真.png'), 32, 32);
    const r = await runCli(['translate', inDir, '-o', outDir, '-m', model, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(listFiles(outDir)).toEqual(['alpha.png', 'cmyk.png', 'deep.png', 'rotated.png', 'фото 写真.png']);
    const rotated = await decodeImage(path.join(outDir, 'rotated.png'));
    expect([rotated.width, rotated.height]).toEqual([32, 48]); // upright by default
    const raw = await runCli(['translate', path.join(inDir, 'rotated.jpg'), '-o', path.join(tmp.dir, 'raw'), '-m', model, '--no-exif']);
    expect(raw.code).toBe(0);
    const stored = await decodeImage(path.join(tmp.dir, 'raw', 'rotated.png'));
    expect([stored.width, stored.height]).toEqual([48, 32]); // as stored, like the reference
  });

  it('refuses an output folder that cannot be written before loading the model', async () => {
    await photo(path.join(inDir, 'a.png'), 32, 32);
    const blocker = path.join(tmp.dir, 'file-not-folder');
    await fsp.writeFile(blocker, 'x');
    const r = await runCli(['translate', inDir, '-o', blocker, '-m', model]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`scenimefy: ${blocker}: output folder is a file, not a folder\n`);
  });

  it('names a missing input and a bad model file', async () => {
    const missing = path.join(tmp.dir, 'nope.jpg');
    await photo(path.join(inDir, 'a.png'), 32, 32);
    const r = await runCli(['translate', missing, path.join(inDir, 'a.png'), '-o', outDir, '-m', model]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`scenimefy: ${missing}: no such file or folder`);
    expect(r.stderr).toContain('translated 1, failed 1, skipped 0');
    expect(listFiles(outDir)).toEqual(['a.png']);
    const badModel = path.join(tmp.dir, 'model.pth');
    await fsp.writeFile(badModel, 'nonsense');
    const m = await runCli(['translate', path.join(inDir, 'a.png'), '-o', outDir, '-m', badModel, '--if-exists', 'overwrite']);
    expect(m.code).toBe(3);
    expect(m.stderr).toBe(`scenimefy: ${badModel}: not a model file (expected .pth/.pt, .safetensors, .onnx or a checkpoint folder)\n`);
  });

  describe('never writes over an input or outside -o (issue 12 #1)', () => {
    async function snapshot(files: string[]): Promise<Buffer[]> {
      return Promise.all(files.map((f) => fsp.readFile(f)));
    }

    it('names the matches of a brace group holding "/" below the literal prefix, not over the inputs', async () => {
      const inputs = [path.join(tmp.dir, 'sub', 'a', 'p.png'), path.join(tmp.dir, 'outside', 'q.png')];
      for (const f of inputs) await photo(f, 32, 32);
      const before = await snapshot(inputs);
      const out = path.join(tmp.dir, 'o', 'out');
      const r = await runCli(['translate', `${tmp.dir}/{sub/a,outside}/*.png`, '-o', out, '-m', model, '--if-exists', 'overwrite']);
      expect(r.code).toBe(0);
      expect(await snapshot(inputs)).toEqual(before);
      expect(listFiles(path.join(tmp.dir, 'o'))).toEqual(['out/outside/q.png', 'out/sub/a/p.png']);
    });

    it('names a match that a pattern reaches by climbing out with ".." by its file name, inside -o', async () => {
      await photo(path.join(tmp.dir, 'sub', 'x', 'keep.png'), 32, 32);
      await photo(path.join(tmp.dir, 'outside', 'q.png'), 32, 32);
      const out = path.join(tmp.dir, 'o', 'out');
      const r = await runCli(['translate', `${tmp.dir}/sub/*/../../outside/*.png`, '-o', out, '-m', model]);
      expect(r.code).toBe(0);
      expect(listFiles(path.join(tmp.dir, 'o'))).toEqual(['out/q.png']);
    });

    it('refuses, before any work and with exit 2, outputs that are inputs, by any name', async () => {
      await photo(path.join(inDir, 'a.png'), 32, 32);
      await photo(path.join(inDir, 'b.jpg'), 32, 32);
      const before = await snapshot([path.join(inDir, 'a.png')]);
      const same = await runCli(['translate', inDir, '-o', inDir, '-m', model, '--if-exists', 'overwrite']);
      expect(same.code).toBe(2);
      expect(same.stderr).toBe(
        `scenimefy: output ${path.join(inDir, 'a.png')} is the input ${path.join(inDir, 'a.png')}: translating would replace the photo; choose an output folder (-o) apart from the inputs\n`,
      );
      // Reached through a link to the folder: the same files, another name.
      const link = path.join(tmp.dir, 'link');
      await fsp.symlink(inDir, link);
      const linked = await runCli(['translate', link, '-o', inDir, '-m', model, '--if-exists', 'overwrite', '--json']);
      expect(linked.code).toBe(2);
      expect(linked.events()).toEqual([expect.objectContaining({ event: 'error', code: 'E_USAGE' })]);
      expect(await snapshot([path.join(inDir, 'a.png')])).toEqual(before);
      expect(listFiles(inDir)).toEqual(['a.png', 'b.jpg']); // b.png was not made either: refused before any work
    });

    it('does not follow a symbolic link inside -o out of it', async () => {
      await photo(path.join(inDir, 'a.png'), 32, 32);
      await photo(path.join(inDir, 'sub', 'b.png'), 32, 32);
      await photo(path.join(inDir, 'sub', 'deep', 'c.png'), 32, 32);
      const elsewhere = path.join(tmp.dir, 'elsewhere');
      await fsp.mkdir(elsewhere);
      await fsp.mkdir(outDir);
      await fsp.symlink(elsewhere, path.join(outDir, 'sub'));
      const r = await runCli(['translate', inDir, '-o', outDir, '-m', model]);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines.filter((l) => l.startsWith('scenimefy: '))).toEqual([
        `scenimefy: ${path.join(outDir, 'sub', 'b.png')}: output folder ${path.join(outDir, 'sub')} leads outside ${outDir} (a symbolic link); not writing there`,
        `scenimefy: ${path.join(outDir, 'sub', 'deep', 'c.png')}: output folder ${path.join(outDir, 'sub')} leads outside ${outDir} (a symbolic link); not writing there`,
      ]);
      expect(listFiles(elsewhere)).toEqual([]);
      expect((await fsp.readdir(elsewhere)).length).toBe(0); // no folder made through the link either
      expect(listFiles(outDir).filter((f) => f !== 'sub')).toEqual(['a.png']);
    });

    it('does not search its own output folder inside an input folder', async () => {
      await photo(path.join(inDir, 'a.png'), 32, 32);
      const nested = path.join(inDir, 'anime');
      expect((await runCli(['translate', inDir, '-o', nested, '-m', model])).code).toBe(0);
      const again = await runCli(['translate', inDir, '-o', nested, '-m', model, '--if-exists', 'overwrite', '--json']);
      expect(again.code).toBe(0);
      expect(again.events().at(-1)).toMatchObject({ translated: 1 });
      expect(listFiles(inDir)).toEqual(['a.png', 'anime/a.png']);
    });
  });

  (process.platform === 'win32' ? it.skip : it)(
    'follows links to images in folders and names what it cannot read: FIFOs, devices, dangling links (issue 12 #5, #8)',
    async () => {
      await photo(path.join(inDir, 'real.png'), 32, 32);
      await photo(path.join(tmp.dir, 'elsewhere', 'q.png'), 32, 32);
      await fsp.symlink(path.join(tmp.dir, 'elsewhere', 'q.png'), path.join(inDir, 'link.png'));
      await fsp.symlink(path.join(tmp.dir, 'nowhere.png'), path.join(inDir, 'dangling.png'));
      await fsp.symlink('/dev/zero', path.join(inDir, 'zero.png'));
      await fsp.symlink(path.join(tmp.dir, 'elsewhere'), path.join(inDir, 'folder-link'));
      const fifo = path.join(inDir, 'pipe.png');
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const r = await runCli(['translate', inDir, '-o', outDir, '-m', model]);
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('scenimefy: '))).toEqual([
        `scenimefy: ${path.join(inDir, 'dangling.png')}: cannot read the image: is a symbolic link to "${path.join(tmp.dir, 'nowhere.png')}", which does not exist`,
        `scenimefy: ${path.join(inDir, 'folder-link')}: symbolic link to a folder, not followed (give it as an input of its own)`,
        `scenimefy: ${path.join(inDir, 'pipe.png')}: cannot read the image: is a FIFO (named pipe), not a regular file`,
        `scenimefy: ${path.join(inDir, 'zero.png')}: cannot read the image: is a symbolic link to "/dev/zero", a character device, not a regular file`,
      ]);
      expect(r.stderr).toContain('translated 2, failed 4, skipped 0');
      expect(listFiles(outDir)).toEqual(['link.png', 'real.png']);

      // Named on the command line: said what they are, not "no such file".
      const direct = await runCli([
        'translate',
        fifo,
        path.join(inDir, 'zero.png'),
        path.join(inDir, 'link.png'),
        '-o',
        outDir,
        '-m',
        model,
        '--if-exists',
        'skip',
      ]);
      expect(direct.code).toBe(1);
      expect(direct.stderr.split('\n').filter((l) => l.startsWith('scenimefy: '))).toEqual([
        `scenimefy: ${fifo}: cannot read the image: is a FIFO (named pipe), not a regular file`,
        `scenimefy: ${path.join(inDir, 'zero.png')}: cannot read the image: is a symbolic link to "/dev/zero", a character device, not a regular file`,
      ]);
      // A glob lists what links reach, devices included: those are named too, never read.
      const globbed = await runCli(['translate', `${inDir}/*.png`, '-o', outDir, '-m', model, '--if-exists', 'skip']);
      expect(globbed.code).toBe(1);
      expect(globbed.stderr).toContain(
        'zero.png: cannot read the image: is a symbolic link to "/dev/zero", a character device, not a regular file',
      );
    },
  );

  it('keeps the error line of a file name holding a newline or an escape one line (issue 12 #10)', async () => {
    await fsp.writeFile(path.join(inDir, 'bad\nname.png'), 'not a png');
    await fsp.writeFile(path.join(inDir, 'red\u001b[31m.png'), 'not a png');
    const r = await runCli(['translate', inDir, '-o', outDir, '-m', model]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(4); // the model line, two errors, the summary
    expect(lines[1]).toMatch(/^scenimefy: .*\/in\/bad\\nname\.png: .+$/);
    expect(lines[2]).toMatch(/^scenimefy: .*\/in\/red\\x1b\[31m\.png: .+$/);
    const json = await runCli(['translate', inDir, '-o', outDir, '-m', model, '--json']);
    expect(
      json
        .events()
        .filter((e) => e.event === 'error')
        .map((e) => e.input),
    ).toEqual([path.join(inDir, 'bad\nname.png'), path.join(inDir, 'red\u001b[31m.png')]);
  });

  it('stops at the next image when stdout is closed, and exits 141 without a stack trace (issue 12 #11)', async () => {
    for (const name of ['a', 'b', 'c', 'd']) await photo(path.join(inDir, `${name}.png`), 32, 32);
    let writes = 0;
    const stdout = new Writable({
      write(_chunk, _enc, cb) {
        // The reader takes one line (the model event), then goes away like `| head -1`.
        writes += 1;
        cb(writes > 1 ? Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }) : null);
      },
    });
    const errors: string[] = [];
    const stderr = new Writable({
      write(chunk, _enc, cb) {
        errors.push(String(chunk));
        cb();
      },
    });
    const code = await main(['translate', inDir, '-o', outDir, '-m', model, '--json'], { stdout, stderr, isTTY: false });
    expect(code).toBe(141);
    expect(errors.join('')).toBe('');
    // The 'start' event failed; the first image was under way by the time the failure arrived, then it stopped.
    expect(listFiles(outDir)).toEqual(['a.png']);
  });

  it('removes the temp files a killed writer left in its output folders, and nothing else (issue 12 #9)', async () => {
    await photo(path.join(inDir, 'a.png'), 32, 32);
    await photo(path.join(inDir, 'sub', 'b.png'), 32, 32);
    const dead = spawnSync(process.execPath, ['-e', '']).pid; // exited: no process has this pid now
    const old = new Date(Date.now() - 3600_000);
    const stale = [path.join(outDir, `.a.png.${dead}.0123456789ab.tmp`), path.join(outDir, 'sub', `.b.png.${dead}.ba9876543210.tmp`)];
    const kept = [
      path.join(outDir, `.c.png.${process.pid}.0123456789ab.tmp`), // a live writer's
      path.join(outDir, `.d.png.${dead}.abcdef.tmp`), // not our naming
      path.join(outDir, 'notes.txt'),
    ];
    for (const f of [...stale, ...kept]) {
      await fsp.mkdir(path.dirname(f), { recursive: true });
      await fsp.writeFile(f, 'half an image');
      await fsp.utimes(f, old, old);
    }
    const r = await runCli(['translate', inDir, '-o', outDir, '-m', model, '--json']);
    expect(r.code).toBe(0);
    expect(r.events().filter((e) => e.event === 'cleaned')).toEqual([
      { event: 'cleaned', folder: outDir, files: [stale[0]] },
      { event: 'cleaned', folder: path.join(outDir, 'sub'), files: [stale[1]] },
    ]);
    for (const f of stale) await expect(fsp.stat(f)).rejects.toThrow();
    for (const f of kept) await expect(fsp.stat(f)).resolves.toBeTruthy();
  });

  it('validates its options with usage errors', async () => {
    const r = await runCli(['translate', inDir, '-o', outDir, '--tile', '13']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--tile takes auto, off, or a multiple of 4 of at least 16, got "13"');
    const f = await runCli(['translate', inDir, '-o', outDir, '--format', 'bmp']);
    expect(f.code).toBe(2);
  });

  it('exits 2 before any work on a bad number, saying what is valid, and 3 on a missing or unknown model (issue 12 #12)', async () => {
    await photo(path.join(inDir, 'a.png'), 32, 32);
    await photo(path.join(inDir, 'b.png'), 32, 32);
    const three = await runCli(['translate', inDir, '-o', outDir, '-m', model, '--max-side', '3']);
    expect(three.code).toBe(2);
    expect(three.stderr).toBe(
      `error: option '--max-side <px>' argument '3' is invalid. --max-side takes an integer ≥ 4, got "3"\n(run with --help for usage)\n`,
    );
    await expect(fsp.stat(outDir)).rejects.toThrow(); // nothing done, not even the output folder
    for (const [flag, value, valid] of [
      ['--max-side', '0', 'an integer ≥ 4'],
      ['--quality', '0', 'an integer from 1 to 100'],
      ['--quality', '101', 'an integer from 1 to 100'],
      ['--threads', '0', 'an integer from 1 to 1024'],
      ['--max-pixels', '0', 'an integer ≥ 1'],
      ['--max-pixels', '1e6', 'an integer ≥ 1'],
    ] as const) {
      const r = await runCli(['translate', inDir, '-o', outDir, '-m', model, flag, value]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${flag} takes ${valid}, got "${value}"`);
      expect(r.stderr).not.toContain('9007199254740991');
    }

    const missing = path.join(tmp.dir, 'missing.pth');
    const noFile = await runCli(['translate', inDir, '-o', outDir, '-m', missing, '--json']);
    expect(noFile.code).toBe(3);
    expect(noFile.stderr).toBe(`scenimefy: ${missing}: no such model file or folder (known model names: shinkai)\n`);
    expect(noFile.events().at(-1)).toMatchObject({ event: 'error', code: 'E_MODEL_FORMAT' });
    const unknown = await runCli(['translate', inDir, '-o', outDir, '-m', 'hayao']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toBe('scenimefy: hayao: no such model file or folder (known model names: shinkai)\n');
  });

  it('explains every option in --help', async () => {
    const r = await runCli(['translate', '--help']);
    expect(r.code).toBe(0);
    for (const opt of [
      '--output',
      '--format',
      '--quality',
      '--if-exists',
      '--model',
      '--max-side',
      '--resize-back',
      '--round-output',
      '--no-exif',
      '--max-pixels',
      '--tile',
      '--threads',
      '--device',
      '--offline',
      '--json',
    ]) {
      expect(r.stdout).toContain(opt);
    }
  });
});
