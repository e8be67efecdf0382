/**
 * Text analysis shared by the search adapters and the snippet builder: one language-neutral
 * tokenizer for chat text in any script, so the PostgreSQL index, its queries and the highlighted
 * snippets agree on what a "word" is.
 *
 * - A word is a run of letters, digits and combining marks (Unicode \p{L}\p{N}\p{M}); everything
 *   else (spaces, punctuation, emoji, symbols) separates words.
 * - Words are folded: compatibility-normalised (NFKD: full-width forms, ligatures), stripped of
 *   non-spacing marks (accents: "Résumé" and "resume" match), recomposed (NFC) and lower-cased.
 *   No stemming: stemming is language-specific and chat mixes languages in one conversation.
 * - Han, Hiragana and Katakana are written without spaces: each run is indexed as its single
 *   characters and its overlapping character pairs (bigrams); a query uses the bigrams (or the
 *   character when it is alone), so "東京都" finds "東京都庁" but not "京東".
 */

export type Token = {
  term: string;
  /** Offsets in the original text (UTF-16 code units), [start, end). */
  start: number;
  end: number;
};

/** Longer words are cut: nobody searches for 64+ characters of one word. */
export const MAX_TERM_CHARS = 64;

const WORD = /[\p{L}\p{N}\p{M}]+/gu;
const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
const NON_SPACING_MARK = /\p{Mn}/gu;

export function fold(text: string): string {
  return text.normalize('NFKD').replace(NON_SPACING_MARK, '').normalize('NFC').toLowerCase().slice(0, MAX_TERM_CHARS);
}

type Segment = { cjk: boolean; start: number; end: number; chars: { text: string; start: number; end: number }[] };

/** Splits a word run into CJK and non-CJK segments. */
function segments(run: string, offset: number): Segment[] {
  const out: Segment[] = [];
  let index = 0;
  for (const ch of run) {
    const cjk = CJK_CHAR.test(ch);
    const start = offset + index;
    const end = start + ch.length;
    index += ch.length;
    const last = out[out.length - 1];
    // Combining marks stay with the segment they follow.
    if (last && (last.cjk === cjk || (!cjk && /^\p{M}$/u.test(ch)))) {
      last.end = end;
      last.chars.push({ text: ch, start, end });
    } else {
      out.push({ cjk, start, end, chars: [{ text: ch, start, end }] });
    }
  }
  return out;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range starts at U+0000; the test is for any ASCII text
const ASCII = /^[\x00-\x7f]*$/;
const ASCII_WORD = /[A-Za-z0-9]+/g;
const HAS_CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/** Appends the tokens of one word run (letters, digits, marks) starting at `offset`. */
function pushRun(text: string, run: string, offset: number, mode: 'index' | 'query', out: Token[]): void {
  if (!HAS_CJK.test(run)) {
    const term = ASCII.test(run) ? run.toLowerCase().slice(0, MAX_TERM_CHARS) : fold(run);
    if (term !== '') out.push({ term, start: offset, end: offset + run.length });
    return;
  }
  for (const seg of segments(run, offset)) {
    if (!seg.cjk) {
      const term = fold(text.slice(seg.start, seg.end));
      if (term !== '') out.push({ term, start: seg.start, end: seg.end });
      continue;
    }
    const chars = seg.chars.map((c) => ({ ...c, term: fold(c.text) }));
    if (mode === 'index' || chars.length === 1) {
      for (const c of chars) out.push({ term: c.term, start: c.start, end: c.end });
    }
    for (let i = 0; i + 1 < chars.length; i++) {
      out.push({ term: chars[i]!.term + chars[i + 1]!.term, start: chars[i]!.start, end: chars[i + 1]!.end });
    }
  }
}

function tokens(text: string, mode: 'index' | 'query'): Token[] {
  const out: Token[] = [];
  // ASCII text (most chat) has no marks and no CJK: a simpler pattern finds the same words.
  for (const match of text.matchAll(ASCII.test(text) ? ASCII_WORD : WORD)) pushRun(text, match[0], match.index, mode, out);
  return out;
}

/** The tokens a document is indexed with, in text order (CJK: characters and bigrams). */
export function analyzeDocument(text: string): Token[] {
  return tokens(text, 'index');
}

const ASCII_TERM = /[a-z0-9]+/g;

/**
 * The terms of a document in text order, as `analyzeDocument` gives them, without the offsets:
 * the indexing path. ASCII text (most chat) takes a fast path: lower-casing never moves a word
 * boundary there, so one pass over the lower-cased text finds the same terms.
 */
export function documentTerms(text: string): string[] {
  if (!ASCII.test(text)) return tokens(text, 'index').map((t) => t.term);
  const terms = text.toLowerCase().match(ASCII_TERM) ?? [];
  for (let i = 0; i < terms.length; i++) if (terms[i]!.length > MAX_TERM_CHARS) terms[i] = terms[i]!.slice(0, MAX_TERM_CHARS);
  return terms;
}

/** The distinct terms a query must all match (AND), in the order they appear. */
export function analyzeQuery(text: string): string[] {
  return [...new Set(tokens(text, 'query').map((t) => t.term))];
}
