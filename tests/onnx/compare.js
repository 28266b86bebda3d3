// Runs an ONNX file that `trainer export` wrote with ONNX Runtime (a
// runtime nobody here wrote) on every image of an IDX file, and compares
// with what `trainer predict --json` printed for the same images.
//   node compare.js MODEL.onnx IMAGES.idx[.gz] PREDICT.jsonl [--bare]
// --bare: the model takes normalised input and gives logits; this script
// normalises (per-image z-score, in double: the model must use zscore) and
// applies the softmax.
// Prints one line: images N argmax_agree K max_abs_diff D batches B
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const ort = require('onnxruntime-node');

async function main() {
  const [modelPath, idxPath, jsonPath, flag] = process.argv.slice(2);
  const bare = flag === '--bare';
  let raw = fs.readFileSync(idxPath);
  if (raw[0] === 0x1f && raw[1] === 0x8b) raw = zlib.gunzipSync(raw);
  if (raw.readUInt32BE(0) !== 0x803) throw new Error(`${idxPath}: not an IDX image file`);
  const n = raw.readUInt32BE(4), rows = raw.readUInt32BE(8), cols = raw.readUInt32BE(12);
  const px = rows * cols;
  const want = fs.readFileSync(jsonPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  if (want.length !== n) throw new Error(`${jsonPath}: ${want.length} predictions for ${n} images`);

  const session = await ort.InferenceSession.create(modelPath);
  // Batches of different sizes: the batch dimension must really be free.
  const sizes = [1, 7, 1000];
  let agree = 0, maxDiff = 0, batches = 0;
  for (let start = 0, b = 0; start < n; b++) {
    const count = Math.min(b < sizes.length ? sizes[b] : 2000, n - start);
    const input = new Float32Array(count * px);
    for (let i = 0; i < count; i++) {
      const img = raw.subarray(16 + (start + i) * px, 16 + (start + i + 1) * px);
      let mean = 0, sq = 0;
      for (const v of img) { mean += v; sq += v * v; }
      mean /= px;
      const v = sq / px - mean * mean, inv = v > 1e-6 ? 1 / Math.sqrt(v) : 0;
      for (let j = 0; j < px; j++) input[i * px + j] = bare ? (img[j] - mean) * inv : img[j];
    }
    const feeds = { input: new ort.Tensor('float32', input, [count, 1, rows, cols]) };
    const out = await session.run(feeds);
    const t = out[bare ? 'logits' : 'probabilities'];
    const k = t.dims[1];
    if (t.dims[0] !== count) throw new Error(`batch of ${count} gave ${t.dims[0]} rows`);
    for (let i = 0; i < count; i++) {
      let p = Array.from(t.data.subarray(i * k, (i + 1) * k));
      if (bare) {
        const m = Math.max(...p), e = p.map((x) => Math.exp(x - m)), s = e.reduce((a, c) => a + c, 0);
        p = e.map((x) => x / s);
      }
      const w = want[start + i].probabilities;
      let best = 0;
      for (let c = 0; c < k; c++) {
        if (p[c] > p[best]) best = c;
        maxDiff = Math.max(maxDiff, Math.abs(p[c] - w[c]));
      }
      if (best === want[start + i].class) agree++;
    }
    start += count;
    batches++;
  }
  console.log(`images ${n} argmax_agree ${agree} max_abs_diff ${maxDiff.toExponential(3)} batches ${batches}`);
}

main().catch((e) => { console.error(`compare.js: ${e.message}`); process.exit(1); });
