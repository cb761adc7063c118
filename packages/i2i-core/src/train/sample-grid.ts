/**
 * Sample grids of a training run (`samples/*.png`): one row per sample set, its images side by side (real_A |
 * fake_B | real_B | …), each with its caption above it and the row's label on the left. Text is drawn by
 * compositing an SVG through sharp (librsvg + fontconfig); on a machine without any font the text is simply
 * absent and the grid is otherwise the same, and `captions: false` leaves the text bands out altogether.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { ContractError, InputError, UsageError, tensorToImage, writeImage, type RgbImage } from '@scenimefy/io';

export interface SampleGridImage {
  caption: string;
  /** NCHW float32 in [-1, 1], as DataSample and the generator hand them out. */
  data: Float32Array;
  shape: [1, 3, number, number];
}

export interface SampleGridRow {
  label: string;
  images: SampleGridImage[];
}

export interface SampleGridOptions {
  /** Pixels between images, between rows and around the grid (default 4). */
  gap?: number;
  /** Draw the captions and row labels (default true). */
  captions?: boolean;
  /** Background and gap colour, RGB 0–255 (default white). */
  background?: [number, number, number];
}

export interface SampleGridResult {
  file: string;
  width: number;
  height: number;
}

const FONT_SIZE = 12;
const CAPTION_BAND = 16;
/** DejaVu Sans averages about 0.6 em per character; used only to size the label column. */
const CHAR_WIDTH = 7.2;
/** Pixels that were NaN in the tensor are painted this colour so a diverged output is visible, not a crash. */
const NAN_COLOUR = [255, 0, 255] as const;

function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Cell {
  image: RgbImage;
  caption: string;
  left: number;
  top: number;
}

/** The RGB image of one tensor; NaN pixels become NAN_COLOUR (and the caption starts "[NaN]") instead of throwing. */
function cellImage(img: SampleGridImage, where: string): { image: RgbImage; hasNaN: boolean } {
  const { shape, data } = img;
  if (!Array.isArray(shape) || shape.length !== 4 || shape[0] !== 1 || shape[1] !== 3) {
    throw new ContractError(`expected shape [1, 3, H, W], got [${Array.isArray(shape) ? shape.join(', ') : String(shape)}]`, {
      field: `${where}.shape`,
    });
  }
  const plane = shape[2] * shape[3];
  let nanMask: Uint8Array | undefined;
  let source = data;
  if (data.length === 3 * plane && data.some(Number.isNaN)) {
    nanMask = new Uint8Array(plane);
    source = new Float32Array(data);
    for (let i = 0; i < source.length; i++) {
      if (Number.isNaN(source[i]!)) {
        source[i] = 0;
        nanMask[i % plane] = 1;
      }
    }
  }
  let image: RgbImage;
  try {
    image = tensorToImage(source, shape);
  } catch (error) {
    if (error instanceof ContractError) throw new ContractError(error.message, { field: `${where}.data`, cause: error });
    throw error;
  }
  if (nanMask !== undefined) {
    for (let i = 0; i < plane; i++) {
      if (nanMask[i] === 1) image.data.set(NAN_COLOUR, 3 * i);
    }
  }
  return { image, hasNaN: nanMask !== undefined };
}

function captionSvg(
  width: number,
  height: number,
  cells: Cell[],
  labels: Array<{ text: string; top: number; height: number }>,
  labelWidth: number,
): string {
  const parts: string[] = [];
  // Each text sits in its own nested <svg>, which clips it to its cell: a long caption never runs over a neighbour.
  for (const cell of cells) {
    parts.push(
      `<svg x="${cell.left}" y="${cell.top - CAPTION_BAND}" width="${cell.image.width}" height="${CAPTION_BAND}">` +
        `<text x="1" y="${FONT_SIZE}">${xmlEscape(cell.caption)}</text></svg>`,
    );
  }
  for (const label of labels) {
    parts.push(
      `<svg x="0" y="${label.top}" width="${labelWidth}" height="${label.height}">` +
        `<text x="${labelWidth - 2}" y="${label.height / 2}" text-anchor="end" dominant-baseline="middle">${xmlEscape(label.text)}</text></svg>`,
    );
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<g font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="${FONT_SIZE}" fill="#000">${parts.join('')}</g></svg>`
  );
}

/**
 * Write one grid image of `rows` to `file` (PNG, or JPEG/WebP by extension), atomically, creating its folder.
 * Rows may hold images of different sizes; each row is as tall as its tallest image.
 *
 * Example:
 *   await writeSampleGrid('runs/a/samples/iter-005000.png', [
 *     { label: 'unpaired', images: [{ caption: 'real_A', ...realA }, { caption: 'fake_B', ...fakeB }, { caption: 'real_B', ...realB }] },
 *   ]); // → { file, width, height }
 */
export async function writeSampleGrid(file: string, rows: SampleGridRow[], options: SampleGridOptions = {}): Promise<SampleGridResult> {
  const gap = options.gap ?? 4;
  const withText = options.captions ?? true;
  const background = options.background ?? [255, 255, 255];
  if (!Number.isInteger(gap) || gap < 0) throw new UsageError(`writeSampleGrid: gap must be a non-negative integer, got ${gap}`);
  if (background.length !== 3 || !background.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) {
    throw new UsageError(`writeSampleGrid: background must be three integers 0–255, got [${background.join(', ')}]`);
  }
  if (rows.length === 0 || rows.some((row) => row.images.length === 0)) {
    throw new UsageError(`writeSampleGrid: every grid needs at least one row and every row at least one image (${file})`);
  }

  const band = withText ? CAPTION_BAND : 0;
  const labelWidth =
    withText && rows.some((r) => r.label !== '') ? Math.ceil(Math.max(...rows.map((r) => r.label.length)) * CHAR_WIDTH) + 6 : 0;
  const cells: Cell[] = [];
  const labels: Array<{ text: string; top: number; height: number }> = [];
  let top = gap;
  let width = 0;
  rows.forEach((row, r) => {
    let left = gap + labelWidth;
    let rowHeight = 0;
    row.images.forEach((img, i) => {
      const { image, hasNaN } = cellImage(img, `rows[${r}].images[${i}]`);
      cells.push({ image, caption: hasNaN ? `[NaN] ${img.caption}` : img.caption, left, top: top + band });
      left += image.width + gap;
      rowHeight = Math.max(rowHeight, image.height);
    });
    if (labelWidth > 0) labels.push({ text: row.label, top: top + band, height: rowHeight });
    width = Math.max(width, left);
    top += band + rowHeight + gap;
  });
  const height = top;

  const canvas = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) canvas.set(background, 3 * i);
  for (const { image, left, top: cellTop } of cells) {
    const rowBytes = image.width * 3;
    for (let y = 0; y < image.height; y++) {
      canvas.set(image.data.subarray(y * rowBytes, (y + 1) * rowBytes), ((cellTop + y) * width + left) * 3);
    }
  }

  let grid: RgbImage = { width, height, data: canvas };
  if (withText) {
    // Loaded here, not at the top: i2i-core reaches sharp only through io, and only this path needs it directly.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sharp = require('sharp') as typeof import('sharp');
    const svg = Buffer.from(captionSvg(width, height, cells, labels, labelWidth));
    const { data } = await sharp(canvas, { raw: { width, height, channels: 3 } })
      .composite([{ input: svg, left: 0, top: 0 }])
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    grid = { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  }

  try {
    await fsp.mkdir(path.dirname(file), { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot create the samples folder (${code})`, { file, cause: error });
  }
  await writeImage(file, grid);
  return { file, width, height };
}
