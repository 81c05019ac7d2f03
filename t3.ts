import { initBackend } from './engine/src/backend';
import { loadModel } from './engine/src/model';
import { relevancePass, oneHot } from './engine/src/attribute';
import { buildComposite, normalizeCompositeName } from './engine/src/composites';
import { manifest, goldenNpy, targetIndices, compare } from './test/golden';
async function main() {
  console.log(await initBackend(process.argv[2] || 'wasm'));
  for (const c of ['seed_example','mlp','vgg_bn','resnet_mini']) {
    const m = manifest(c);
    const model = loadModel(`../shared/golden/${c}/model.onnx`);
    const input = goldenNpy(c, m.input);
    for (const [meth, spec] of Object.entries(m.methods)) {
      if (spec.attributor !== 'gradient') continue;
      const name = normalizeCompositeName(spec.composite ?? undefined);
      const composite = name ? buildComposite(name, { low: m.box?.low, high: m.box?.high }) : undefined;
      const ids = Object.keys(spec.layers!).filter(k => model.index.has(k));
      const t = targetIndices(m);
      const r = await relevancePass(model, input, (o) => oneHot(t, o.shape[0], o.shape[1]!), { composite, store: ids });
      const errs: string[] = [];
      const e1 = compare(r.relevance, goldenNpy(c, spec.relevance), 'relevance'); if (e1) errs.push(e1);
      const e2 = compare(r.output, goldenNpy(c, spec.output!), 'output'); if (e2) errs.push(e2);
      for (const l of r.stored) { const e = compare(l.relevance, goldenNpy(c, meth, spec.layers![l.id].file), l.id); if (e) errs.push(e); }
      console.log(c, meth, errs.length ? errs.join(' | ') : 'OK', 'layers', r.stored.length, '/', Object.keys(spec.layers!).length);
    }
  }
}
main().catch(e => { console.error(e); process.exit(1); });
