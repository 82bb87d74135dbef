// Writes the route table of docs/HTTP-API.md from the OpenAPI document
// (server/http/openapi.ts): `node cli/api-doc.ts`. The table sits between two
// marker comments; everything else in the page is written by hand.
// test/server/http/openapi.test.ts fails when the page and the document disagree.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type OpenApiDocument, openApiDocument } from '../server/http/openapi.ts';

export const API_DOC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'HTTP-API.md');
export const BEGIN_MARKER =
  '<!-- api-routes:begin (generated from the OpenAPI document, server/http/api-description.ts, by `node cli/api-doc.ts`) -->';
export const END_MARKER = '<!-- api-routes:end -->';

const METHODS = ['get', 'post', 'patch', 'delete'] as const;

interface Schema {
  properties?: Record<string, unknown>;
  required?: string[];
}
interface Operation {
  summary?: string;
  security?: Array<Record<string, unknown>>;
  parameters?: Array<{ name: string; in: string; required?: boolean }>;
  requestBody?: { required?: boolean; content: Record<string, { schema?: Schema }> };
  responses: Record<string, { description?: string }>;
  'x-enclave-role'?: string;
  'x-enclave-reauth'?: boolean;
}

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function who(op: Operation): string {
  const schemes = (op.security ?? []).flatMap((s) => Object.keys(s));
  const access =
    schemes.length === 0 ? 'anyone' : schemes.includes('apiToken') ? 'session or token' : 'session';
  const role = op['x-enclave-role'] ? `, ${op['x-enclave-role']}` : '';
  return `${access}${role}${op['x-enclave-reauth'] ? ', recent password' : ''}`;
}

function input(op: Operation): string {
  const query = (op.parameters ?? [])
    .filter((p) => p.in === 'query')
    .map((p) => `${p.name}${p.required ? '' : '?'}`);
  const parts = query.length ? [`query: ${query.join(', ')}`] : [];
  const schema = op.requestBody?.content['application/json']?.schema;
  if (schema) {
    const required = new Set(schema.required ?? []);
    const fields = Object.keys(schema.properties ?? {}).map((f) => `${f}${required.has(f) ? '' : '?'}`);
    parts.push(
      `body${op.requestBody?.required ? '' : '?'}: ${fields.length ? `{ ${fields.join(', ')} }` : '{}'}`,
    );
  }
  return parts.join('; ');
}

function answer(op: Operation): string {
  return Object.entries(op.responses)
    .filter(([status]) => /^2\d\d$/.test(status))
    .map(([status, r]) => `${status} ${r.description ?? ''}`.trim())
    .join('; ');
}

/** The Markdown table of every operation of the document, in its order. */
export function routeTable(doc: OpenApiDocument = openApiDocument()): string {
  const rows: string[] = [];
  for (const [p, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = (item as Record<string, Operation | undefined>)[method];
      if (!op) continue;
      const route = `\`${method.toUpperCase()} ${p}\``;
      rows.push(
        `| ${route} | ${cell(op.summary ?? '')} | ${who(op)} | ${cell(input(op))} | ${cell(answer(op))} |`,
      );
    }
  }
  return ['| route | what | who | takes | answers |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** The page with the text between the markers replaced by the table; throws if a marker is missing. */
export function withRouteTable(page: string, table: string = routeTable()): string {
  const begin = page.indexOf(BEGIN_MARKER);
  const end = page.indexOf(END_MARKER);
  if (begin < 0 || end < begin) {
    throw new Error(
      `docs/HTTP-API.md must hold the markers ${BEGIN_MARKER} and ${END_MARKER}, in that order`,
    );
  }
  return `${page.slice(0, begin + BEGIN_MARKER.length)}\n${table}\n${page.slice(end)}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const page = await readFile(API_DOC, 'utf8');
  const updated = withRouteTable(page);
  if (updated === page) {
    process.stdout.write('docs/HTTP-API.md: route table up to date\n');
  } else {
    await writeFile(API_DOC, updated);
    process.stdout.write('docs/HTTP-API.md: route table written\n');
  }
}
