import { InputError, UsageError, loadTf } from '@scenimefy/io';
import { seededUniform } from '@scenimefy/test-utils';
import type { Scalar, Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import type { Float32TensorData } from '../networks/generator';
import { createVgg19Features, vgg19FeaturesStateDictSpec } from '../networks/vgg19';
import type { Vgg19Features } from '../networks/vgg19';
import { IMAGENET_MEAN, IMAGENET_STD, vggInputImage, vggPerceptualLoss } from './vgg-perceptual';
import type { VggInputMapping } from './vgg-perceptual';

let tf: Tf;
let vgg: Vgg19Features;

const SHAPE: [number, number, number, number] = [1, 3, 16, 16];
const N = 3 * 16 * 16;

beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'wasm', require: true }));
  const dict = new Map<string, Float32TensorData>();
  let seed = 21;
  for (const [key, { shape }] of vgg19FeaturesStateDictSpec()) {
    const bound = shape.length === 4 ? Math.sqrt(6 / (9 * shape[1]!)) : 0.05;
    dict.set(key, {
      shape,
      data: seededUniform(
        seed++,
        shape.reduce((a, d) => a * d, 1),
        -bound,
        bound,
      ),
    });
  }
  vgg = createVgg19Features(tf, dict);
});

afterAll(() => vgg.dispose());

const fakeData = seededUniform(1, N);
const realData = seededUniform(2, N);

/** The loss and its gradient w.r.t. the fake, as plain arrays, leaving no tensor behind. */
function lossAndGrad(fake: Float32Array, real: Float32Array, input?: VggInputMapping): { loss: number; grad: Float32Array } {
  const before = tf.memory().numTensors;
  const [f, r] = [tf.tensor4d(fake, SHAPE), tf.tensor4d(real, SHAPE)];
  const { value, grad } = tf.valueAndGrad((x: Tensor4D) => vggPerceptualLoss(tf, vgg, x, r, input === undefined ? {} : { input }))(f);
  const out = { loss: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array };
  tf.dispose([f, r, value, grad]);
  expect(tf.memory().numTensors).toBe(before);
  return out;
}

/** The [-1,1] image whose 'unit' VGG input, (x' + 1)/2, is ((x + 1)/2 − mean)/std: x' = 2·that − 1, per channel. */
function imagenetAsUnit(x: Float32Array): Float32Array {
  const plane = N / 3;
  return x.map((v, i) => {
    const c = Math.floor(i / plane);
    return 2 * (((v + 1) / 2 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!) - 1;
  });
}

describe('vggPerceptualLoss (wasm backend, synthetic VGG weights)', () => {
  it("'unit' is mean((VGG((fake+1)/2) − VGG((real+1)/2))²) over every conv4_4 element, 0 for equal images", () => {
    const { loss } = lossAndGrad(fakeData, realData, 'unit');
    const features = (x: Float32Array) =>
      tf.tidy(() =>
        vgg
          .forward(
            tf.tensor4d(
              x.map((v) => (v + 1) / 2),
              SHAPE,
            ),
          )
          .dataSync(),
      );
    const [a, b] = [features(fakeData), features(realData)];
    expect(a.length).toBe(512 * 2 * 2);
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
    expect(loss).toBeGreaterThan(0);
    expect([loss]).toBeCloseToTensor([sum / a.length], { atol: 0, rtol: 1e-5 });
    expect(lossAndGrad(realData, realData, 'unit').loss).toBe(0);
  });

  it("defaults to 'reference': fake + 0.5 for the fake, i.e. the 'unit' loss of 2·fake, value and gradient", () => {
    const reference = lossAndGrad(fakeData, realData);
    expect(lossAndGrad(fakeData, realData, 'reference')).toEqual(reference);
    const doubled = lossAndGrad(
      fakeData.map((v) => 2 * v),
      realData,
      'unit',
    );
    expect([reference.loss]).toBeCloseToTensor([doubled.loss], { atol: 0, rtol: 1e-5 });
    // d/dfake L_unit(2·fake) = 2 · L_unit'(2·fake).
    const maxGrad = Math.max(...reference.grad.map(Math.abs));
    expect(maxGrad).toBeGreaterThan(0);
    expect(reference.grad).toBeCloseToTensor(
      doubled.grad.map((g) => 2 * g),
      { atol: 1e-4 * maxGrad, rtol: 1e-3, shape: SHAPE },
    );
    // The quirk is visible: identical images do not give 0.
    expect(lossAndGrad(realData, realData).loss).toBeGreaterThan(0);
  });

  it("'imagenet' normalises both sides with torchvision's mean/std after (x+1)/2", () => {
    const imagenet = lossAndGrad(fakeData, realData, 'imagenet');
    const unit = lossAndGrad(imagenetAsUnit(fakeData), imagenetAsUnit(realData), 'unit');
    expect([imagenet.loss]).toBeCloseToTensor([unit.loss], { atol: 0, rtol: 1e-5 });
    expect(imagenet.loss).not.toBeCloseTo(lossAndGrad(fakeData, realData, 'unit').loss, 6);
  });

  it('maps the images as documented (vggInputImage)', () => {
    const x = tf.tensor4d(fakeData, SHAPE);
    const values = (mapping: VggInputMapping, side: 'fake' | 'real') => tf.tidy(() => vggInputImage(tf, x, mapping, side).dataSync());
    expect(values('reference', 'fake')).toBeCloseToTensor(
      fakeData.map((v) => v + 0.5),
      { atol: 1e-7, rtol: 0 },
    );
    expect(values('reference', 'real')).toBeCloseToTensor(
      fakeData.map((v) => (v + 1) / 2),
      { atol: 1e-7, rtol: 0 },
    );
    expect(values('unit', 'fake')).toEqual(values('unit', 'real'));
    expect(values('imagenet', 'fake')).toBeCloseToTensor(
      imagenetAsUnit(fakeData).map((v) => (v + 1) / 2),
      { atol: 1e-6, rtol: 0 },
    );
    x.dispose();
  });

  it('leaves the VGG out of tf.variableGrads: only the fake gets a gradient', () => {
    const initial = tf.tensor4d(fakeData, SHAPE);
    const fake = tf.variable(initial, true, 'perceptual_test_fake');
    initial.dispose();
    const real = tf.tensor4d(realData, SHAPE);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => vggPerceptualLoss(tf, vgg, fake, real));
    expect(Object.keys(grads)).toEqual(['perceptual_test_fake']);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([fake, real]);
  });

  it('refuses images of different shapes and an unknown input mapping', () => {
    const a = tf.zeros([1, 3, 16, 16]) as Tensor4D;
    const b = tf.zeros([1, 3, 16, 8]) as Tensor4D;
    expect(() => vggPerceptualLoss(tf, vgg, a, b)).toThrow(InputError);
    expect(() => vggPerceptualLoss(tf, vgg, a, b)).toThrow(
      'vggPerceptualLoss: fake [1,3,16,16] and real [1,3,16,8] must be NCHW images of the same shape',
    );
    const bad = { input: 'caffe' } as unknown as { input: VggInputMapping };
    expect(() => vggPerceptualLoss(tf, vgg, a, a, bad)).toThrow(UsageError);
    expect(() => vggPerceptualLoss(tf, vgg, a, a, bad)).toThrow(
      'vggPerceptualLoss: input must be one of reference, unit, imagenet, got caffe',
    );
    const loss: Scalar = vggPerceptualLoss(tf, vgg, a, a, { input: 'unit' });
    expect(loss.dataSync()[0]).toBe(0);
    tf.dispose([a, b, loss]);
  });
});
