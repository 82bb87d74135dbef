// fast-check arbitraries for every operation of the served OpenAPI document
// (GET /api/v1/openapi.json): valid input from its JSON Schemas, almost-valid
// input (one field broken), and hostile input (wrong shapes, huge and deep
// bodies, NUL, lone surrogates, invalid UTF-8, prototype keys, edge numbers,
// duplicated query parameters, odd headers). Built from the document alone, so
// a route added to the description is fuzzed without touching this file.
// Ids of real things (another tenant's notes, sessions, tokens) come from the
// test through `IdPool`: the document cannot know them.
import fc from 'fast-check';

export type Method = 'get' | 'post' | 'patch' | 'delete';
const METHODS: readonly Method[] = ['get', 'post', 'patch', 'delete'];

export interface JsonSchema {
  type?: string;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  anyOf?: JsonSchema[];
  not?: unknown;
}

interface Param {
  name: string;
  in: string;
  required?: boolean;
  schema?: JsonSchema;
  example?: string;
}

export interface FuzzOperation {
  /** `POST /api/v1/notes/{id}`: names the operation in messages and in the test's rules. */
  key: string;
  method: Method;
  path: string;
  pathParams: Param[];
  queryParams: Param[];
  body?: { schema: JsonSchema; required: boolean; example?: unknown };
  /** From the operation's `security`: none, a session (and CSRF for writes), or a session or an API token. */
  access: 'public' | 'session' | 'session-or-token';
  role?: string;
  reauth: boolean;
}

interface DocOperation {
  parameters?: Param[];
  security?: Array<Record<string, unknown>>;
  requestBody?: { required?: boolean; content: Record<string, { schema?: JsonSchema; example?: unknown }> };
  'x-enclave-role'?: string;
  'x-enclave-reauth'?: boolean;
}

/** Every operation of an OpenAPI document, in its order. */
export function operationsOf(doc: { paths?: Record<string, unknown> }): FuzzOperation[] {
  const out: FuzzOperation[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = (item as Record<string, DocOperation | undefined>)[method];
      if (!op) continue;
      const params = op.parameters ?? [];
      const security = op.security ?? [];
      const media = op.requestBody?.content['application/json'];
      out.push({
        key: `${method.toUpperCase()} ${path}`,
        method,
        path,
        pathParams: params.filter((p) => p.in === 'path'),
        queryParams: params.filter((p) => p.in === 'query'),
        ...(media?.schema
          ? {
              body: {
                schema: media.schema,
                required: op.requestBody?.required ?? false,
                ...(media.example === undefined ? {} : { example: media.example }),
              },
            }
          : {}),
        access:
          security.length === 0
            ? 'public'
            : security.some((s) => 'apiToken' in s)
              ? 'session-or-token'
              : 'session',
        ...(op['x-enclave-role'] ? { role: op['x-enclave-role'] } : {}),
        reauth: op['x-enclave-reauth'] === true,
      });
    }
  }
  return out;
}

// --- Values -----------------------------------------------------------------------------------

const MB = 1024 * 1024;
/** Made once: a few of these are sent, not generated per run. */
const ONE_MB = 'm'.repeat(MB);

/** Numbers at every edge, and the strings that look like them. */
export const EDGE_NUMBERS: readonly unknown[] = [
  0,
  -0,
  -1,
  1.5,
  0.1,
  1e308,
  -1e308,
  Number.MIN_VALUE,
  2 ** 31,
  2 ** 31 - 1,
  2 ** 53 + 1,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  'NaN',
  'Infinity',
  '-0',
  '1e308',
  '9007199254740993',
  '0x10',
  '1.0',
  ' 1',
];

/** Strings that break naive code: NUL, lone surrogates, control and bidi characters, injection shapes. */
export const NASTY_STRINGS: readonly string[] = [
  '',
  ' ',
  'a\u0000b',
  '\u0000',
  '\uD800',
  'x\uDFFFy',
  '\uFFFE\uFEFF',
  '\u202Egnp.exe',
  '\r\n\r\nX-Injected: 1',
  "' OR 1=1 --",
  '"; DROP TABLE notes; --',
  '$1',
  '%00',
  '../../../etc/passwd',
  '{{7*7}}<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'prototype',
  '😀'.repeat(50),
  'é'.repeat(300),
  'x'.repeat(10_001),
];

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** `{ [key]: value }` with `key` as an own, enumerable property even when it is `__proto__`. */
function withOwn(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...target };
  Object.defineProperty(copy, key, { value, enumerable: true, configurable: true, writable: true });
  return copy;
}

/** Prototype-pollution shapes, as JSON would carry them. */
const pollution = fc
  .constantFrom(...PROTO_KEYS)
  .map((k) => withOwn({}, k, k === 'constructor' ? { prototype: { polluted: 'yes' } } : { polluted: 'yes' }));

/** A value of a shape nobody expects where a string or a number belongs. */
export function hostileValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
    { weight: 3, arbitrary: fc.constantFrom(...EDGE_NUMBERS) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, {}, [], [[]], [null], { a: 1 }) },
    { weight: 1, arbitrary: pollution },
    { weight: 1, arbitrary: fc.array(fc.constantFrom<unknown>('a', 1, null, {}), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  );
}

/** What the schema accepts. Bounded: long strings only at their limit, arrays short. */
export function validValue(schema: JsonSchema): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.anyOf && !schema.type && !schema.properties) {
    const branches = schema.anyOf.filter((s) => s.not === undefined).map(validValue);
    return branches.length ? fc.oneof(...branches) : fc.constant(undefined);
  }
  switch (schema.type) {
    case 'string':
      return validString(schema);
    case 'integer': {
      const min = schema.minimum ?? -(2 ** 31);
      const max = schema.maximum ?? 2 ** 31 - 1;
      return fc.oneof(
        fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31 - 1) }),
        fc.constantFrom(min, max),
      );
    }
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const items = validValue(schema.items ?? {});
      const max = Math.min(schema.maxItems ?? 5, 5);
      const short = fc.array(items, { minLength: schema.minItems ?? 0, maxLength: max });
      return schema.maxItems === undefined
        ? short
        : fc.oneof(
            { weight: 4, arbitrary: short },
            fc.array(items, { minLength: schema.maxItems, maxLength: schema.maxItems }),
          );
    }
    case 'object':
      return validObject(schema);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function validString(schema: JsonSchema): fc.Arbitrary<string> {
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? 60;
  const fits = (s: string) => s.length >= min && s.length <= max;
  if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter(fits);
  if (schema.format === 'email') return fc.emailAddress().filter(fits);
  const ordinary = fc.string({ minLength: min, maxLength: Math.min(max, 60) });
  // The limit itself, in characters zod counts (UTF-16 units) and in a letter that is two bytes.
  const atLimit = fc.constantFrom('a'.repeat(max), 'é'.repeat(max));
  return schema.maxLength === undefined ? ordinary : fc.oneof({ weight: 5, arbitrary: ordinary }, atLimit);
}

function validObject(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> {
  const props = schema.properties ?? {};
  const required = schema.required ?? [];
  const model = Object.fromEntries(Object.entries(props).map(([k, s]) => [k, validValue(s)]));
  const atLeastOne = (schema.anyOf ?? []).filter((s) => s.required).map((s) => s.required as string[]);
  return fc
    .record(model, { requiredKeys: required.filter((k) => k in props) })
    .map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)))
    .filter((o) => atLeastOne.length === 0 || atLeastOne.some((keys) => keys.every((k) => k in o)));
}

/** One thing wrong with a valid object: a field missing, of a wrong type, past a limit, or one too many. */
export function almostValidObject(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> {
  const props = Object.keys(schema.properties ?? {});
  const mutation = fc.oneof(
    fc.record({
      kind: fc.constant('extra' as const),
      key: fc.constantFrom('unexpectedField', ...PROTO_KEYS),
    }),
    ...(props.length
      ? [
          fc.record({
            kind: fc.constantFrom('missing' as const, 'wrongType' as const, 'boundary' as const),
            key: fc.constantFrom(...props),
          }),
        ]
      : []),
  );
  return fc.tuple(validObject(schema), mutation, hostileValue()).map(([valid, m, hostile]) => {
    const field = schema.properties?.[m.key] ?? {};
    switch (m.kind) {
      case 'extra':
        return withOwn(valid, m.key, hostile);
      case 'missing': {
        const { [m.key]: _gone, ...rest } = valid;
        return rest;
      }
      case 'wrongType':
        return withOwn(valid, m.key, hostile);
      default:
        return withOwn(valid, m.key, pastLimit(field));
    }
  });
}

/** Just outside what a field accepts. */
function pastLimit(field: JsonSchema): unknown {
  if (field.type === 'string' || (!field.type && field.anyOf))
    return field.maxLength !== undefined ? 'a'.repeat(field.maxLength + 1) : 'a'.repeat(100_001);
  if (field.type === 'integer')
    return field.maximum !== undefined && field.maximum < Number.MAX_SAFE_INTEGER
      ? field.maximum + 1
      : 2 ** 53 + 1;
  if (field.type === 'array') return Array.from({ length: (field.maxItems ?? 1000) + 1 }, () => 'a');
  return -0;
}

// --- Requests ---------------------------------------------------------------------------------

export type FuzzBody =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'raw'; bytes: Buffer; contentType: string; what: string };

export interface FuzzRequest {
  /** The path with its parameters filled in, already percent-encoded. */
  path: string;
  /** The query string without `?`, already percent-encoded (may repeat a name, or hold bad escapes). */
  query: string;
  body: FuzzBody;
  /** Sent on top of the caller's own (a garbage CSRF token or cookie replaces the caller's). */
  headers: Record<string, string>;
  /** How the input was made: valid, almost-valid or hostile, and what was broken. */
  mode: string;
}

/** Real ids the test made, by path parameter: another tenant's, and a few of the caller's own. */
export type IdPool = (op: FuzzOperation, param: string) => readonly string[];

/** encodeURIComponent, but a lone surrogate goes out as its WTF-8 bytes (invalid UTF-8) instead of throwing. */
export function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    let out = '';
    for (const ch of s) {
      const cu = ch.charCodeAt(0);
      if (ch.length === 1 && cu >= 0xd800 && cu <= 0xdfff) {
        const bytes = [0xe0 | (cu >> 12), 0x80 | ((cu >> 6) & 0x3f), 0x80 | (cu & 0x3f)];
        out += bytes.map((b) => `%${b.toString(16).toUpperCase()}`).join('');
      } else out += encodeURIComponent(ch);
    }
    return out;
  }
}

function pathArb(op: FuzzOperation, ids: IdPool, hostile: boolean): fc.Arbitrary<string> {
  const parts = op.pathParams.map((p) => {
    const real = ids(op, p.name);
    const valid = fc.oneof(
      p.schema?.pattern
        ? fc.stringMatching(new RegExp(p.schema.pattern))
        : fc.string({ minLength: 1, maxLength: 30 }),
      ...(real.length ? [fc.constantFrom(...real)] : []),
    );
    const bad = fc.oneof(
      fc
        .constantFrom(
          '0',
          '-1',
          '1.5',
          '1e3',
          '9'.repeat(17),
          '9007199254740993',
          '0b3c2f9e6a1d4c559d3e2f1a7b8c9d0e',
          '0B3C2F9E-6A1D-4C55-9D3E-2F1A7B8C9D0E',
          'K3V9X2M7Q1ZP',
          'k3v9x2m7q1z',
        )
        .map(enc),
      fc.constantFrom(...NASTY_STRINGS.filter((s) => s !== '').map((s) => s.slice(0, 2000))).map(enc),
      // Escapes a strict decoder refuses: truncated, invalid UTF-8, an encoded lone surrogate.
      fc.constantFrom('%', '%E0%A4%A', '%FF%FE', '%ED%A0%80', '%C0%AF', '..%2F..%2Fadmin', '%2e%2e'),
    );
    return hostile
      ? fc.oneof({ weight: 1, arbitrary: valid.map(enc) }, { weight: 3, arbitrary: bad })
      : valid.map(enc);
  });
  return fc.tuple(...parts).map((values) => {
    let i = 0;
    return op.path.replace(/\{\w+\}/g, () => values[i++] as string);
  });
}

type Pair = [string, string];
const joinQuery = (pairs: Pair[]) => pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');

function validQueryPairs(op: FuzzOperation): fc.Arbitrary<Pair[]> {
  // The document's own example, where it gives one, besides what its schema allows.
  const model = Object.fromEntries(
    op.queryParams.map((p) => {
      const fromSchema = validValue(p.schema ?? { type: 'string' }).map(String);
      return [
        p.name,
        p.example === undefined ? fromSchema : fc.oneof(fromSchema, fc.constant(String(p.example))),
      ];
    }),
  );
  const required = op.queryParams.filter((p) => p.required).map((p) => p.name);
  return (
    fc
      .record(model, { requiredKeys: required })
      .map((o) => Object.entries(o) as Pair[])
      // A value at its limit in two-byte letters can outgrow Node's 16 kB request head (431, before any route).
      .filter((pairs) => joinQuery(pairs).length < 12_000)
  );
}

/** One thing wrong with a valid query: a value, a duplicate, a missing or unknown name. */
function almostValidQuery(op: FuzzOperation): fc.Arbitrary<string> {
  const names = op.queryParams.map((p) => p.name);
  return fc
    .tuple(
      validQueryPairs(op),
      fc.constantFrom('duplicate', 'wrong', 'missing', 'unknown', 'empty', 'bracket', 'long'),
      names.length ? fc.constantFrom(...names) : fc.constant('q'),
      hostileValue(),
    )
    .map(([pairs, kind, name, hostile]) => {
      const value = typeof hostile === 'string' ? hostile : (JSON.stringify(hostile) ?? 'undefined');
      const rest = pairs.filter(([k]) => k !== name);
      const own = pairs.find(([k]) => k === name)?.[1] ?? '1';
      switch (kind) {
        case 'duplicate':
          return joinQuery([...rest, [name, own], [name, own === '1' ? '2' : '1']]);
        case 'wrong':
          return joinQuery([...rest, [name, value.slice(0, 4000)]]);
        case 'missing':
          return joinQuery(rest);
        case 'unknown':
          return joinQuery([...pairs, ['unexpected', '1']]);
        case 'empty':
          return `${joinQuery(rest)}&${enc(name)}=&${enc(name)}`;
        case 'bracket':
          return `${joinQuery(rest)}&${enc(name)}[]=1&${enc(name)}[a]=2`;
        default:
          return joinQuery([...rest, [name, 'q'.repeat(6000)]]);
      }
    });
}

/** Query strings no form would send: bad escapes, NUL, prototype keys, thousands of parameters. */
const hostileQuery: fc.Arbitrary<string> = fc.constantFrom(
  '%',
  'q=%E0%A4%A',
  'q=%ED%A0%80&limit=%FF',
  'q=a%00b&cursor=%00',
  '__proto__=1&constructor=2&prototype=3',
  '__proto__[polluted]=yes&constructor[prototype][polluted]=yes',
  'limit=-0&limit=1e308&limit=NaN',
  'limit=9007199254740993',
  'limit=1.5',
  Array.from({ length: 1500 }, (_, i) => `p${i}=${i}`).join('&'),
  '&&&=&=&==',
  'q',
);

/** Bodies that are not the JSON object a route wants. */
function hostileBody(): fc.Arbitrary<FuzzBody> {
  const raw = (what: string, bytes: Buffer | string, contentType = 'application/json'): FuzzBody => ({
    kind: 'raw',
    what,
    bytes: typeof bytes === 'string' ? Buffer.from(bytes) : bytes,
    contentType,
  });
  return fc.oneof(
    // Wrong top-level shapes, and objects where strings belong.
    { weight: 3, arbitrary: hostileValue().map((value): FuzzBody => ({ kind: 'json', value })) },
    { weight: 1, arbitrary: pollution.map((value): FuzzBody => ({ kind: 'json', value })) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        raw('deep array nesting, 10,000 levels', `${'['.repeat(10_000)}${']'.repeat(10_000)}`),
        raw('deep object nesting, 10,000 levels', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`),
        raw(
          'invalid UTF-8',
          Buffer.from([
            0x7b, 0x22, 0x74, 0x69, 0x74, 0x6c, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d,
          ]),
        ),
        raw(
          'a lone surrogate as UTF-8 bytes',
          Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]),
        ),
        raw(
          'an escaped lone surrogate',
          '{"title":"\\ud800","body":"\\udfff","note":"\\ud800","name":"\\ud800"}',
        ),
        raw('a raw NUL byte', Buffer.from('{"title":"a\u0000b"}')),
        raw('an escaped NUL', '{"title":"a\\u0000b","note":"\\u0000","reason":"\\u0000","name":"\\u0000"}'),
        raw('truncated JSON', '{"title":'),
        raw('duplicate keys', '{"title":"a","title":{"b":1},"version":1,"version":"1"}'),
        raw('a JSON string, not an object', '"just a string"'),
        raw('JSON null', 'null'),
        raw('a JSON number', '123'),
        raw('an empty body', ''),
        raw('a byte-order mark', Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d])),
        raw('UTF-16 claimed', '{}', 'application/json; charset=utf-16'),
        raw('an unknown charset', '{}', 'application/json; charset=klingon'),
        raw('JSON sent as text/plain', '{"title":"x"}', 'text/plain'),
        raw(
          'a form with repeated fields',
          'title=x&title=y&__proto__=z&version=1',
          'application/x-www-form-urlencoded',
        ),
        raw('a form with brackets', 'title[a]=1&tags[]=x', 'application/x-www-form-urlencoded'),
        raw(
          'multipart',
          '--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--b--',
          'multipart/form-data; boundary=b',
        ),
        raw(
          'XML',
          '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
          'application/xml',
        ),
        raw('a bogus content type', '{}', '*/*; ;;=='),
        raw('a number too big for a double', '{"version":1e999,"noteId":1e999,"limit":-1e999}'),
      ),
    },
    // A few megabyte bodies: a 1 MB string, valid JSON, well past express.json's 100 kB.
    {
      weight: 1,
      arbitrary: fc.constant(raw('1 MB string', `{"title":"${ONE_MB}","body":"${ONE_MB.slice(0, 1000)}"}`)),
    },
  );
}

/** Headers around the caller's own: a mismatched type, junk tokens, huge values within Node's limit. */
export const oddHeaders: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({}) },
  {
    weight: 4,
    arbitrary: fc.constantFrom<Record<string, string>>(
      { authorization: 'Bearer enc_garbage' },
      { authorization: `Bearer enc_${'a'.repeat(64)}` },
      { authorization: 'Bearer ' },
      { authorization: 'Basic YWRtaW46YWRtaW4=' },
      { authorization: `Bearer ${'z'.repeat(8000)}` },
      { 'x-csrf-token': 'garbage' },
      { 'x-csrf-token': '' },
      { cookie: 'enclave.sid=s%3Agarbage.signature' },
      { cookie: `enclave.sid=${'c'.repeat(6000)}` },
      { 'x-fuzz': 'v'.repeat(8000) },
      { accept: 'text/html' },
      { accept: 'application/xml;q=1, */*;q=0' },
      { 'accept-encoding': 'gzip;q=1000000' },
      { 'x-forwarded-for': '127.0.0.1, ::1, not-an-ip' },
      { 'x-request-id': '\u00ff'.repeat(300) },
      { origin: 'https://evil.example' },
      { 'if-none-match': '*' },
      { range: 'bytes=0-1,5-6' },
      { 'content-encoding': 'gzip' },
      { 'content-encoding': 'br' },
    ),
  },
);

/** A request for `op`: valid, almost valid (one thing broken) or hostile, in some proportion. */
export function requestFor(op: FuzzOperation, ids: IdPool): fc.Arbitrary<FuzzRequest> {
  const hasBody = op.method !== 'get';
  const schema = op.body?.schema;
  const bodyValid: fc.Arbitrary<FuzzBody> =
    hasBody && schema
      ? fc
          .oneof({ weight: 3, arbitrary: validValue(schema) }, fc.constant(op.body?.example))
          .map((value): FuzzBody => (value === undefined ? { kind: 'none' } : { kind: 'json', value }))
      : fc.constant<FuzzBody>({ kind: 'none' });
  const bodyAlmost: fc.Arbitrary<FuzzBody> =
    hasBody && schema?.type === 'object'
      ? almostValidObject(schema).map((value): FuzzBody => ({ kind: 'json', value }))
      : hasBody
        ? fc.constant<FuzzBody>({ kind: 'json', value: { unexpectedField: 1 } })
        : fc.constant<FuzzBody>({ kind: 'none' });
  const queryValid = validQueryPairs(op).map(joinQuery);

  const valid = fc
    .record({ path: pathArb(op, ids, false), query: queryValid, body: bodyValid, headers: fc.constant({}) })
    .map((r): FuzzRequest => ({ ...r, mode: 'valid' }));
  const almost = fc
    .tuple(pathArb(op, ids, false), queryValid, almostValidQuery(op), bodyValid, bodyAlmost, fc.boolean())
    .map(([path, q, badQ, b, badB, breakBody]): FuzzRequest => {
      const inBody = breakBody && hasBody;
      return {
        path,
        query: inBody ? q : badQ,
        body: inBody ? badB : b,
        headers: {},
        mode: inBody ? 'almost-valid body' : 'almost-valid query',
      };
    });
  const hostile = fc
    .record({
      path: pathArb(op, ids, true),
      query: fc.oneof(queryValid, hostileQuery, almostValidQuery(op)),
      body: hasBody ? hostileBody() : fc.constant<FuzzBody>({ kind: 'none' }),
      headers: oddHeaders,
    })
    .map((r): FuzzRequest => ({ ...r, mode: 'hostile' }));
  return fc.oneof(
    { weight: 2, arbitrary: valid },
    { weight: 3, arbitrary: almost },
    { weight: 4, arbitrary: hostile },
  );
}

/** The request in a few hundred characters, for an assertion's message (a 1 MB body is not printed). */
export function describeRequest(op: FuzzOperation, caller: string, req: FuzzRequest): string {
  const cut = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
  const body =
    req.body.kind === 'none'
      ? 'no body'
      : req.body.kind === 'json'
        ? `JSON ${cut(JSON.stringify(req.body.value) ?? 'undefined')}`
        : `${req.body.what} (${req.body.contentType}, ${req.body.bytes.length} bytes)`;
  const headers = Object.entries(req.headers)
    .map(([k, v]) => `${k}: ${cut(v, 60)}`)
    .join('; ');
  return `${op.method.toUpperCase()} ${cut(req.path, 200)}${req.query ? `?${cut(req.query, 200)}` : ''} as ${caller} [${req.mode}], ${body}${headers ? `, headers ${headers}` : ''}`;
}
