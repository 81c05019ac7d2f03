/** Text the extension puts into Markdown (the layer tree's tooltips) from model files. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { escapeMarkdown } from '../../webview/src/format';

test('free text from a model cannot become a link, an image, HTML or a theme icon in Markdown', () => {
  const hostile = [
    '[click](https://evil.example/x)',
    '![img](https://evil.example/pixel.png)',
    '<img src=x onerror=alert(1)>',
    '$(alert) **bold** `code`',
    'https://evil.example/autolink',
    'line\n\n# heading',
  ];
  for (const text of hostile) {
    const escaped = escapeMarkdown(text);
    // every special character is preceded by a backslash: none is left to start a construct
    assert.doesNotMatch(escaped, /(^|[^\\])[[\]()<>!$`*#:]/, `${text} → ${escaped}`);
    assert.doesNotMatch(escaped, /\n/, 'no line breaks (no block constructs)');
  }
  assert.equal(escapeMarkdown('features.3'), 'features\\.3');
  assert.equal(escapeMarkdown('layer1.0.conv1'), 'layer1\\.0\\.conv1');
});
