/**
 * Child process for the crash tests (run with `node --import tsx`; killed with SIGKILL by the parent).
 *
 *   crash-writer.ts <target> hang    write one container; after the first chunk print "mid" and hang
 *   crash-writer.ts <target> loop    rewrite the target forever, alternating two containers (gen 1, gen 2);
 *                                    print "writing" once the first write has begun
 */
import { writeFileAtomic } from '../../../src/io/atomic-file.js';
import { encodeContainer } from '../../../src/io/tensor-container.js';

const [target, mode] = process.argv.slice(2);
const FLOATS = 2 * 1024 * 1024; // 8 MiB per container

function container(gen: number): Uint8Array {
  return encodeContainer({ kind: 'crash-test', meta: { gen }, tensors: { w: { shape: [FLOATS], data: new Float32Array(FLOATS).fill(gen) } } });
}

if (mode === 'hang') {
  await writeFileAtomic(target, container(1), {
    chunkBytes: 256 * 1024,
    onProgress: async () => {
      process.stdout.write('mid\n');
      await new Promise(() => undefined); // never resolves: the parent kills us here
    },
  });
} else if (mode === 'loop') {
  const gens = [container(1), container(2)];
  let announced = false;
  for (let i = 0; ; i++) {
    await writeFileAtomic(target, gens[i % 2], {
      chunkBytes: 512 * 1024,
      onProgress: () => {
        if (!announced) {
          announced = true;
          process.stdout.write('writing\n');
        }
      },
    });
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
