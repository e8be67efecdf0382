import { analyzeDocument } from '../../domain/search/analysis.js';

/**
 * The highlighted snippet of a hit: the part of the message around its first match, HTML-escaped
 * (& < > " ' become entities), with each matched word wrapped in <mark>…</mark>. Those two tags
 * are the only markup a snippet ever holds, so a client can insert it as HTML as is, or, to render
 * it as plain text, split on the tags and unescape the five entities. A cut is shown as "…".
 * Built the same way for every adapter, from the same word analysis the PostgreSQL index uses.
 */

export const MARK_OPEN = '<mark>';
export const MARK_CLOSE = '</mark>';
export const SNIPPET_CHARS = 200;
/** How much text to show before the first match when the message must be cut. */
const LEAD_CHARS = 60;

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

const isLowSurrogate = (text: string, i: number) => {
  const code = text.charCodeAt(i);
  return code >= 0xdc00 && code <= 0xdfff;
};

/** Moves a cut so it falls on a space near it (within 15 characters) and never inside a surrogate pair. */
function snap(text: string, at: number, direction: -1 | 1): number {
  if (at <= 0) return 0;
  if (at >= text.length) return text.length;
  for (let d = 0; d < 15; d++) {
    const i = at + d * direction;
    if (i <= 0 || i >= text.length) break;
    if (/\s/.test(text[i - 1]!) && !/\s/.test(text[i]!)) return i;
  }
  let i = at;
  while (i > 0 && i < text.length && isLowSurrogate(text, i)) i += direction;
  return i;
}

export function buildSnippet(content: string, queryTerms: readonly string[]): string {
  const wanted = new Set(queryTerms);
  const ranges: [number, number][] = [];
  for (const token of analyzeDocument(content)) {
    if (!wanted.has(token.term)) continue;
    const last = ranges[ranges.length - 1];
    if (last && token.start <= last[1]) last[1] = Math.max(last[1], token.end);
    else ranges.push([token.start, token.end]);
  }
  let start = 0;
  let end = content.length;
  if (content.length > SNIPPET_CHARS) {
    const first = ranges[0]?.[0] ?? 0;
    start = first <= LEAD_CHARS ? 0 : snap(content, first - LEAD_CHARS, 1);
    end = snap(content, start + SNIPPET_CHARS, -1);
    if (end <= start) end = Math.min(content.length, start + SNIPPET_CHARS);
  }
  let out = start > 0 ? '…' : '';
  let at = start;
  for (const [a, b] of ranges) {
    if (b <= start || a >= end) continue;
    const from = Math.max(a, start);
    const to = Math.min(b, end);
    out += escapeHtml(content.slice(at, from)) + MARK_OPEN + escapeHtml(content.slice(from, to)) + MARK_CLOSE;
    at = to;
  }
  out += escapeHtml(content.slice(at, end));
  if (end < content.length) out += '…';
  return out;
}
