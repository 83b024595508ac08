/**
 * Memory planning for the engine: how many images one forward pass may take,
 * whether a training batch can fit at all, and turning the backends'
 * out-of-memory failures into MsnResourceError.
 *
 * Why estimates: tfjs-wasm runs in a 32-bit heap (4 GiB at most) and an
 * allocation that fails there aborts the module with an untyped RuntimeError
 * that leaves the backend unusable. Refusing, or splitting, before the first
 * allocation is the only way to keep the engine alive. The estimates count
 * the float32 intermediates a tf.tidy scope keeps alive (every layer's
 * outputs), so they err on the large side.
 */
import { MsnResourceError } from '../errors.js';
import type { VitConfig } from '../model/config.js';

/** The wasm32 heap tfjs-wasm can grow to. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;
/** What one embedding forward pass may hold; larger calls are split into passes of this size. */
export const EMBED_PASS_BYTES = 256 * 1024 ** 2;
/** The share of the heap a single image's forward pass or one training step may plan to use. */
export const MAX_PLANNED_BYTES = WASM_HEAP_BYTES * 0.75;

const MIB = 1024 ** 2;

/** Float32 bytes one image with `tokens` tokens (CLS included) keeps alive through the encoder. */
export function forwardBytesPerImage(cfg: VitConfig, tokens: number): number {
  const d = cfg.embedDim;
  // Per block: norms, qkv and its split/transposes, residuals (~14 x T x D), the MLP and
  // exact-erf GELU (~6 x T x hidden), and scores, scaled scores and softmax (3 x H x T^2).
  const perBlock = tokens * d * (14 + 6 * cfg.mlpRatio) + 3 * cfg.numHeads * tokens * tokens;
  return 4 * (cfg.depth * perBlock + tokens * d * 4);
}

/** Tokens of an image of h x w px (CLS included). */
export function tokensOf(cfg: VitConfig, h: number, w: number): number {
  return Math.floor(h / cfg.patchSize) * Math.floor(w / cfg.patchSize) + 1;
}

/**
 * Images per embedding pass: the caller's batch size, lowered so a pass stays
 * within EMBED_PASS_BYTES. MsnResourceError when one image alone is too big.
 */
export function embedPassSize(cfg: VitConfig, h: number, w: number, requested: number, resized: boolean): number {
  const per = forwardBytesPerImage(cfg, tokensOf(cfg, h, w));
  if (per > MAX_PLANNED_BYTES) {
    throw new MsnResourceError(
      `One ${h}x${w} px image needs about ${Math.round(per / MIB)} MiB to encode at full size (${tokensOf(cfg, h, w)} tokens), ` +
        `more than the ${Math.round(MAX_PLANNED_BYTES / MIB)} MiB the engine plans for one pass. ` +
        (resized ? 'Use a smaller model.' : 'Drop resize: false (images are then resized to the model size) or downscale the images first.'),
    );
  }
  return Math.max(1, Math.min(requested, Math.floor(EMBED_PASS_BYTES / per)));
}

export interface ViewPlan {
  randViews: number;
  focalViews: number;
  focalSize: number;
  maskRatio: number;
}

/**
 * Bytes one training step keeps alive for `batchSize` images: the target
 * view's forward pass, and the anchor views' forward passes with what
 * backpropagation adds (about twice the forward again).
 */
export function trainStepBytes(cfg: VitConfig, views: ViewPlan, batchSize: number): number {
  const full = tokensOf(cfg, cfg.imgSize, cfg.imgSize);
  const kept = Math.max(2, Math.round((full - 1) * (1 - views.maskRatio)) + 1);
  const focal = tokensOf(cfg, views.focalSize, views.focalSize);
  const target = forwardBytesPerImage(cfg, full);
  const anchors = views.randViews * forwardBytesPerImage(cfg, kept) + views.focalViews * forwardBytesPerImage(cfg, focal);
  return batchSize * (target + 3 * anchors);
}

/** MsnResourceError before the first step when a batch cannot fit in the heap. */
export function checkTrainBatch(cfg: VitConfig, views: ViewPlan, batchSize: number): void {
  const need = trainStepBytes(cfg, views, batchSize);
  if (need > MAX_PLANNED_BYTES) {
    const fits = Math.max(0, Math.floor((batchSize * MAX_PLANNED_BYTES) / need));
    throw new MsnResourceError(
      `A training step with batchSize ${batchSize} needs about ${Math.round(need / MIB)} MiB, more than the ` +
        `${Math.round(MAX_PLANNED_BYTES / MIB)} MiB the engine plans for one step. Use batchSize ${fits >= 2 ? `<= ${fits}` : '2 with fewer views'}.`,
    );
  }
}

/**
 * The backends' ways of saying "out of memory": wasm heap growth failures
 * and aborts (RuntimeError), failed ArrayBuffer allocations (RangeError),
 * WebGPU buffer creation errors.
 */
export function isOutOfMemory(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === 'MsnResourceError') return true;
  const m = e.message ?? '';
  return (
    (e.name === 'RuntimeError' && /memory access out of bounds|out of memory|Aborted\(/i.test(m)) ||
    (e.name === 'RangeError' && /allocation failed|Invalid typed array length|Array buffer|WebAssembly\.Memory/i.test(m)) ||
    // Word-bounded and case-sensitive where it matters: "the disk has room" is not an OOM.
    /\bout of memory\b|Cannot enlarge memory|Failed to allocate/i.test(m) ||
    /\bOOM\b/.test(m)
  );
}

/** An out-of-memory failure as MsnResourceError (other errors unchanged). */
export function asResourceError(e: unknown, what: string, hint: string): unknown {
  if (!isOutOfMemory(e) || (e as Error).name === 'MsnResourceError') return e;
  return new MsnResourceError(`${what} ran out of memory (${(e as Error).name}: ${(e as Error).message}). ${hint}`, { cause: e });
}
