import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type CliResult = { code: number | null; stdout: string; stderr: string };

const scriptsDir = fileURLToPath(new URL('..', import.meta.url));

/**
 * Runs one of the operator CLIs as a real process (`node --import tsx scripts/<name>.ts ...`) with
 * `env` on top of a clean environment (no DATABASE_URL / CHAT_DATA_DIR leak in from the caller).
 */
export function runCliProcess(script: 'replay' | 'projections' | 'bench-split' | 'accounts', args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<CliResult> {
  const base = { ...process.env };
  delete base.DATABASE_URL;
  delete base.CHAT_DATA_DIR;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `${scriptsDir}${script}.ts`, ...args], {
      env: { ...base, LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} took longer than ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Parses NDJSON output (one JSON value per line). */
export const ndjson = (text: string): unknown[] => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as unknown);

/** A strict RFC 4180 CSV parser for tests (quoted fields, doubled quotes, CRLF or LF records). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
