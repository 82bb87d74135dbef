// The fuzzer's own inputs, checked without a server: what test/fuzz/api-arbitraries.ts
// calls valid passes the zod schema the route itself parses with (server/http/api-description.ts
// points at the same schemas), except where a refinement says more than JSON Schema can;
// and every almost-valid body breaks a strict schema.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { z } from 'zod';
import { API_OPERATIONS } from '../../server/http/api-description.ts';
import { openApiDocument, openApiPath } from '../../server/http/openapi.ts';
import { almostValidObject, enc, operationsOf, validValue } from './api-arbitraries.ts';

/**
 * What zod checks and the JSON Schema cannot say: refinements (a real calendar date, a page
 * size from 1 to 200: `custom`), and the range of a number a query string is turned into.
 */
const beyondJsonSchema = (issue: z.core.$ZodIssue, part: 'body' | 'query') =>
  issue.code === 'custom' ||
  (part === 'query' && (issue.code === 'too_big' || issue.code === 'too_small') && issue.origin === 'number');

const ops = operationsOf(openApiDocument());
const zodOf = (key: string, part: 'body' | 'query'): z.ZodType | undefined => {
  const found = API_OPERATIONS.find((o) => `${o.method.toUpperCase()} ${openApiPath(o.path)}` === key);
  const input = found?.[part];
  return input && 'zod' in input ? (input.zod as z.ZodType) : undefined;
};

describe('the fuzzer’s arbitraries (test/fuzz/api-arbitraries.ts)', () => {
  test('every operation of the document is read, with its access, role and reauth', () => {
    assert.equal(ops.length, API_OPERATIONS.length);
    const reauth = ops.filter((o) => o.reauth).map((o) => o.key);
    assert.equal(reauth.length, API_OPERATIONS.filter((o) => o.reauth).length);
    assert.ok(ops.some((o) => o.access === 'public') && ops.some((o) => o.access === 'session-or-token'));
  });

  test('a valid body or query passes the route’s own zod schema (but for refinements JSON Schema cannot say)', () => {
    let checked = 0;
    for (const op of ops) {
      for (const part of ['body', 'query'] as const) {
        const schema = zodOf(op.key, part);
        if (!schema) continue;
        const arb =
          part === 'body' && op.body
            ? validValue(op.body.schema)
            : fc.record(
                Object.fromEntries(
                  op.queryParams.map((p) => [p.name, validValue(p.schema ?? {}).map(String)]),
                ),
                { requiredKeys: op.queryParams.filter((p) => p.required).map((p) => p.name) },
              );
        fc.assert(
          fc.property(arb, (value) => {
            if (value === undefined) return;
            const parsed = schema.safeParse(value);
            const unexplained = parsed.success
              ? []
              : parsed.error.issues.filter((i) => !beyondJsonSchema(i, part));
            assert.deepEqual(unexplained, [], `${op.key} ${part} ${JSON.stringify(value).slice(0, 300)}`);
          }),
          { seed: 16, numRuns: 50 },
        );
        checked++;
      }
    }
    assert.ok(checked >= 30, `only ${checked} zod schemas checked`);
  });

  test('an almost-valid body of a strict schema with every field at hand is refused by it', () => {
    // Extra fields, past-the-limit values and missing required fields always break a strict
    // schema; a wrong type mostly does (a nasty string is still a string).
    let refused = 0;
    let total = 0;
    for (const op of ops) {
      const schema = zodOf(op.key, 'body');
      if (!schema || op.body?.schema.type !== 'object') continue;
      fc.assert(
        fc.property(almostValidObject(op.body.schema), (value) => {
          total++;
          if (!schema.safeParse(value).success) refused++;
        }),
        { seed: 16, numRuns: 40 },
      );
    }
    assert.ok(total > 0 && refused / total > 0.6, `only ${refused} of ${total} almost-valid bodies refused`);
  });

  test('a lone surrogate in a path or query goes out as invalid UTF-8, not a thrown URIError', () => {
    assert.equal(enc('a\uD800b'), 'a%ED%A0%80b');
    assert.equal(enc('é'), '%C3%A9');
  });
});
