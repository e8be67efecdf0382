import { describe, expect, it } from 'vitest';
import { analyzeDocument, documentTerms, MAX_TERM_CHARS } from './analysis.js';

describe('documentTerms (the indexing path)', () => {
  it('gives the terms of analyzeDocument, in order, on ASCII and on any other script', () => {
    const texts = [
      'Meet me at 10:30, OK? Bring the BBQ-sauce & 2 cokes!!',
      "it's a_b_c don't",
      `${'x'.repeat(MAX_TERM_CHARS + 10)} tail`,
      'Résumé of the Café meeting, naïve coöperation',
      '東京都庁で会いましょう 10時',
      'ＡＢＣ full-width and ﬁ ligature',
      '',
      '🎉🎉 party!! 🎉',
    ];
    for (const text of texts) expect(documentTerms(text), text).toEqual(analyzeDocument(text).map((t) => t.term));
  });
});
