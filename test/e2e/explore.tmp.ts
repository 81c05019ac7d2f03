import { Workbench } from '/work/main/test/e2e/harness';
import * as path from 'path';
const ex = (f: string) => path.join('/work/main/examples/shapes', f);
(async () => {
  const wb = await Workbench.open({ files: { 'model.onnx': ex('model.onnx'), 'triangle.png': ex('triangle.png'), 'classes.json': ex('classes.json') } });
  try {
    await wb.screenshot('x-start');
    console.log(await wb.page.locator('.explorer-folders-view .monaco-list-row').first().innerHTML().catch(e=>String(e)));
    await wb.contextMenu(wb.explorerRow('model.onnx'), 'Open in Relevance Lens');
    await wb.layerRow('features.0').waitFor({ timeout: 30000 });
    await wb.screenshot('x-tree');
    await wb.contextMenu(wb.layerRow('features.3'), 'Attach Store Hook');
    await wb.page.waitForTimeout(1000);
    await wb.screenshot('x-hooked');
    await wb.showExplorer();
    await wb.contextMenu(wb.explorerRow('triangle.png'), 'Use as Relevance Lens Input');
    await wb.command('Relevance Lens: Run Attribution');
    await wb.page.waitForTimeout(6000);
    await wb.screenshot('x-run');
  } catch (e) { console.log(String(e).slice(0,300)); await wb.command('Notifications: Show Notifications'); await wb.page.waitForTimeout(500); await wb.screenshot('x-fail'); console.log(await wb.page.locator('.sidebar').innerHTML().then(h=>h.slice(0,3000)));
  } finally { console.log(wb.extensionLog());
    
    await wb.close();
  }
})();
