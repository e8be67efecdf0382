import { describe, expect, it } from 'vitest';
import { analyzeDocument, analyzeQuery } from '../../domain/search/analysis.js';
import { buildSnippet, SNIPPET_CHARS } from './snippet.js';

describe('search text analysis', () => {
  it('folds case, accents and width; splits on anything but letters and digits', () => {
    expect(analyzeQuery('Crème BRÛLÉE, naïve café!! ｆｕｌｌ')).toEqual(['creme', 'brulee', 'naive', 'cafe', 'full']);
    expect(analyzeQuery("don't stop-me now 🎉 42")).toEqual(['don', 't', 'stop', 'me', 'now', '42']);
    expect(analyzeQuery('Привет МИР Ελληνικά')).toEqual(['привет', 'мир', 'ελληνικα']);
    expect(analyzeQuery('   ?! 🎉 ')).toEqual([]);
  });

  it('indexes CJK runs as characters and bigrams; queries them by bigrams', () => {
    expect(analyzeDocument('東京都').map((t) => t.term)).toEqual(['東', '京', '都', '東京', '京都']);
    expect(analyzeQuery('東京都')).toEqual(['東京', '京都']);
    expect(analyzeQuery('東')).toEqual(['東']);
    expect(analyzeQuery('go東京')).toEqual(['go', '東京']);
  });

  it('gives offsets into the original text', () => {
    const text = 'Olá, MUNDO';
    expect(analyzeDocument(text).map((t) => text.slice(t.start, t.end))).toEqual(['Olá', 'MUNDO']);
  });
});

describe('buildSnippet', () => {
  it('marks every matched word, escaping the rest and the matches', () => {
    expect(buildSnippet('<script>alert("Café")</script> & cafe', ['cafe'])).toBe(
      '&lt;script&gt;alert(&quot;<mark>Café</mark>&quot;)&lt;/script&gt; &amp; <mark>cafe</mark>',
    );
    expect(buildSnippet("it's O'Brien", ['brien'])).toBe('it&#39;s O&#39;<mark>Brien</mark>');
  });

  it('marks CJK matches and merges overlapping ones', () => {
    expect(buildSnippet('明日東京都庁で', ['東京', '京都'])).toBe('明日<mark>東京都</mark>庁で');
  });

  it('cuts a long message around the first match, on word boundaries, with ellipses', () => {
    const filler = 'lorem ipsum dolor sit amet '.repeat(20);
    const text = `${filler}the NEEDLE is here ${filler}`;
    const snippet = buildSnippet(text, ['needle']);
    expect(snippet.startsWith('…')).toBe(true);
    expect(snippet.endsWith('…')).toBe(true);
    expect(snippet).toContain('<mark>NEEDLE</mark>');
    const visible = snippet.replace(/<\/?mark>/g, '').replace(/…/g, '');
    expect(visible.length).toBeLessThanOrEqual(SNIPPET_CHARS);
    expect(text).toContain(visible);
    expect(visible.startsWith(' ')).toBe(false);
  });

  it('never splits a surrogate pair at a cut', () => {
    const text = `${'😀'.repeat(150)} word ${'😀'.repeat(150)}`;
    const snippet = buildSnippet(text, ['word']);
    expect(snippet).toContain('<mark>word</mark>');
    expect(() => encodeURIComponent(snippet)).not.toThrow();
  });

  it('shows the start of the message when no word is marked', () => {
    expect(buildSnippet('short message', ['other'])).toBe('short message');
  });
});
