import { datasetContract } from './contracts/dataset-manifest';
import { parseContract } from './contracts/parse-contract';
import {
  ContractError,
  ERROR_MESSAGE_MAX_CHARS,
  EXIT_CODES,
  InputError,
  ModelFormatError,
  QUOTED_VALUE_MAX_CHARS,
  ScenimefyError,
  UsageError,
  capText,
  exitCodeFor,
  joinCapped,
  quoteValue,
} from './errors';
import { parseSafetensors } from './safetensors';

describe('typed errors', () => {
  it('carries a stable code, the class name and the file in the message', () => {
    const e = new InputError('not an image (text file)', { file: 'photos/a.png' });
    expect(e).toBeInstanceOf(ScenimefyError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('E_INPUT');
    expect(e.name).toBe('InputError');
    expect(e.file).toBe('photos/a.png');
    expect(e.message).toBe('photos/a.png: not an image (text file)');
  });

  it('does not repeat a file name the message already holds', () => {
    const e = new ModelFormatError('x.pth is truncated', { file: 'x.pth' });
    expect(e.message).toBe('x.pth is truncated');
  });

  it('names the field of a contract violation', () => {
    const e = new ContractError('unknown format "foo"', { file: 'run/checkpoint.json', field: 'format' });
    expect(e.message).toBe('run/checkpoint.json: format: unknown format "foo"');
    expect(e.field).toBe('format');
  });

  it('maps codes to exit statuses in one place', () => {
    expect(exitCodeFor(new InputError('x'))).toBe(EXIT_CODES.someInputsFailed);
    expect(exitCodeFor(new UsageError('x'))).toBe(EXIT_CODES.usage);
    expect(exitCodeFor(new ModelFormatError('x'))).toBe(EXIT_CODES.modelOrContract);
    expect(exitCodeFor(new ContractError('x'))).toBe(EXIT_CODES.modelOrContract);
    expect(exitCodeFor(new Error('boom'))).toBe(EXIT_CODES.internal);
  });
});

describe('capped values in messages (issue 12 #6)', () => {
  const huge = 'x'.repeat(1_000_000);

  it('capText and quoteValue cut long values and say how long they were', () => {
    expect(capText('short')).toBe('short');
    expect(capText(huge)).toBe(`${'x'.repeat(QUOTED_VALUE_MAX_CHARS)}… (1000000 characters)`);
    expect(quoteValue('conv.weight')).toBe('"conv.weight"');
    expect(quoteValue(huge)).toBe(`"${'x'.repeat(200)}"… (1000000 characters)`);
    expect(quoteValue(12345678901234567890n)).toBe('12345678901234567890');
    expect(quoteValue(1n << 8_000_000n)).toBe('an integer of about 8000004 bits');
    expect(quoteValue(-(1n << 4000n))).toBe('a negative integer of about 4004 bits');
    expect(quoteValue([1, 2, 3])).toBe('[1,2,3]');
    expect(quoteValue(new Array(1_000_000).fill(7)).length).toBeLessThan(QUOTED_VALUE_MAX_CHARS + 20);
    const object = quoteValue({ a: huge });
    expect(object).toMatch(/^\{"a":"x+… \(truncated\)$/);
    expect(object.length).toBeLessThanOrEqual(QUOTED_VALUE_MAX_CHARS + 14);
    expect(joinCapped([1, 2, 3])).toBe('1, 2, 3');
    expect(joinCapped(new Array(1_000_000).fill(64))).toMatch(/^64, 64, .*, … \(1000000 items\)$/);
  });

  it('a ScenimefyError keeps at most ERROR_MESSAGE_MAX_CHARS of its message, whatever it was given', () => {
    const e = new ModelFormatError(`problem: ${huge}`, { file: 'a.pth' });
    expect(e.message.length).toBeLessThan(ERROR_MESSAGE_MAX_CHARS + 30);
    expect(e.message.startsWith('a.pth: problem: xxx')).toBe(true);
    expect(e.message.endsWith(`… (${1_000_016} characters)`)).toBe(true);
  });

  it('readers quote what a hostile file holds in a short line', () => {
    // A safetensors header naming a tensor with a megabyte of characters.
    const header = new TextEncoder().encode(JSON.stringify({ [huge]: { dtype: 'Q9', shape: [1], data_offsets: [0, 1] } }));
    const file = new Uint8Array(8 + header.byteLength + 1);
    new DataView(file.buffer).setBigUint64(0, BigInt(header.byteLength), true);
    file.set(header, 8);
    const st = (() => {
      try {
        parseSafetensors(file, 'w.safetensors');
      } catch (error) {
        return error as Error;
      }
      throw new Error('expected an error');
    })();
    expect(st.message).toBe(
      `w.safetensors: invalid safetensors file: tensor "${'x'.repeat(200)}"… (1000000 characters) has unsupported dtype "Q9" (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)`,
    );
    // A contract listing the same megabyte-long path twice.
    const dataset = {
      format: 'scenimefy-dataset',
      formatVersion: 1,
      generatedBy: { name: 'x', version: '1' },
      createdAt: '2025-01-31T12:00:00.000Z',
      kind: 'unpaired',
      files: [0, 1].map(() => ({ path: `trainA/${huge}.png`, sha256: '0'.repeat(64), size: 1 })),
    };
    expect(() => parseContract(JSON.stringify(dataset), 'manifest.json', datasetContract)).toThrow(
      `manifest.json: files[1].path: "trainA/${'x'.repeat(193)}"… (1000011 characters) is listed twice (first at files[0])`,
    );
  });
});
