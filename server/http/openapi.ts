// The OpenAPI 3.1 description of the JSON API, built once from the operation
// list (api-description.ts) with zod-openapi, which renders each route's own
// zod schemas as JSON Schema (request bodies and query strings as input: a
// `.default()` field is optional, a transform shows what the client sends).
// Served at GET /api/v1/openapi.json to anyone: it holds nothing private, so
// unlike every other answer it may be cached (an ETag answers revalidation).
import { createHash } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import {
  createDocument,
  type oas31,
  type ZodOpenApiOperationObject,
  type ZodOpenApiPathsObject,
  type ZodOpenApiResponsesObject,
} from 'zod-openapi';
import { enclaveVersion } from '../../backup/context.ts';
import { API_OPERATIONS, type ApiOperation, OPENAPI_PATH } from './api-description.ts';
import type { ErrorBody } from './http-errors.ts';

export type OpenApiDocument = oas31.OpenAPIObject;

/** The body of every error answer (http-errors.ts sendProblem); `satisfies` keeps the two in step. */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z
        .string()
        .meta({ description: 'Stable, for programs: e.g. `invalid_input`, `version_conflict`.' }),
      message: z.string().meta({ description: 'For people; safe to show.' }),
      details: z.unknown().optional().meta({ description: 'Only where there is more to say.' }),
    }),
  })
  .meta({ id: 'Error' }) satisfies z.ZodType<ErrorBody>;

const problem = (description: string) => ({
  description,
  content: { 'application/json': { schema: ErrorBodySchema } },
});

const ref = (name: string) => ({ $ref: `#/components/responses/${name}` });

/** `/api/v1/notes/:id` → `/api/v1/notes/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:(\w+)/g, '{$1}');
}

function operationId(op: ApiOperation): string {
  const words = op.path
    .replace(/^\/api\/v1\//, '')
    .split(/[/.-]/)
    .filter(Boolean)
    .map((w) => (w.startsWith(':') ? `By${w.slice(1, 2).toUpperCase()}${w.slice(2)}` : w))
    .map((w) => `${w.slice(0, 1).toUpperCase()}${w.slice(1)}`);
  return `${op.method}${words.join('')}`;
}

const WRITES = new Set(['post', 'patch', 'delete']);

function security(op: ApiOperation): oas31.SecurityRequirementObject[] {
  if (op.access === 'public') return [];
  const session: oas31.SecurityRequirementObject = WRITES.has(op.method)
    ? { session: [], csrf: [] }
    : { session: [] };
  return op.access === 'session' ? [session] : [session, { apiToken: [] }];
}

const MEDIA = { gzip: 'application/gzip', 'octet-stream': 'application/octet-stream' } as const;

function responses(op: ApiOperation): ZodOpenApiResponsesObject {
  const { status, description, type = 'json' } = op.success;
  const success =
    type === 'none'
      ? { description }
      : type === 'json'
        ? { description, content: { 'application/json': { schema: { type: 'object' as const } } } }
        : { description, content: { [MEDIA[type]]: {} } };
  const hasInput = Boolean(op.query || op.body);
  return {
    [status]: success,
    ...(op.alsoSuccess
      ? {
          [op.alsoSuccess.status]: {
            description: op.alsoSuccess.description,
            content: { 'application/json': { schema: { type: 'object' as const } } },
          },
        }
      : {}),
    ...(hasInput ? { 400: ref('InvalidInput') } : {}),
    ...(op.access === 'public' ? {} : { 401: ref('Unauthenticated'), 403: ref('Forbidden') }),
    ...(op.params ? { 404: ref('NotFound') } : {}),
    default: ref('Problem'),
  };
}

function who(op: ApiOperation): string {
  const access = {
    public: 'Anyone.',
    session: 'A signed-in browser session (API tokens get 403); writes carry X-CSRF-Token.',
    'session-or-token':
      'A session (writes carry X-CSRF-Token) or an API token (read-only tokens may only GET).',
  }[op.access];
  const role = op.role ? ` Role: ${op.role}.` : '';
  const reauth = op.reauth ? ' Needs a recent password confirmation (POST /api/v1/admin/reauth).' : '';
  return `${access}${role}${reauth}`;
}

function operation(op: ApiOperation): ZodOpenApiOperationObject {
  const parameters: oas31.ParameterObject[] = Object.entries(op.params ?? {}).map(([name, p]) => ({
    name,
    in: 'path',
    required: true,
    description: p.description,
    schema: { type: 'string', ...(p.pattern ? { pattern: p.pattern } : {}) },
    ...(p.example ? { example: p.example } : {}),
  }));
  const extensions: Record<`x-${string}`, unknown> = {};
  if (op.role) extensions['x-enclave-role'] = op.role;
  if (op.reauth) extensions['x-enclave-reauth'] = true;
  const checkedBy: string[] = [];
  let queryZod: z.ZodObject | undefined;
  if (op.query && 'zod' in op.query) {
    queryZod = op.query.zod;
    // Strict schemas (every one here): a parameter the description does not list is a 400.
    if (queryZod._zod.def.catchall?._zod.def.type === 'never')
      extensions['x-enclave-unknown-query'] = 'refused';
  } else if (op.query) {
    checkedBy.push(op.query.checkedBy);
    for (const p of op.query.byHand)
      parameters.push({ ...p, in: 'query', schema: p.schema as oas31.SchemaObject });
  }
  let requestBody: ZodOpenApiOperationObject['requestBody'];
  if (op.body) {
    if ('checkedBy' in op.body) checkedBy.push(op.body.checkedBy);
    const schema = 'zod' in op.body ? op.body.zod : (op.body.byHand as oas31.SchemaObject);
    requestBody = {
      required: op.body.required,
      ...(op.body.note ? { description: op.body.note } : {}),
      content: {
        'application/json': {
          schema,
          ...(op.body.example === undefined ? {} : { example: op.body.example }),
        },
      },
    };
  }
  if (checkedBy.length) extensions['x-enclave-input-checked-by'] = checkedBy;
  return {
    operationId: operationId(op),
    tags: [op.tag],
    summary: op.summary,
    description: who(op),
    security: security(op),
    ...(parameters.length ? { parameters } : {}),
    ...(queryZod ? { requestParams: { query: queryZod } } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses: responses(op),
    ...extensions,
  };
}

/** What zod-openapi cannot know: query examples per parameter, and "at least one of" refinements. */
function finish(doc: OpenApiDocument): OpenApiDocument {
  for (const op of API_OPERATIONS) {
    const rendered = doc.paths?.[openApiPath(op.path)]?.[op.method];
    if (!rendered) continue;
    const example = op.query && 'zod' in op.query ? op.query.example : undefined;
    for (const p of (rendered.parameters ?? []) as oas31.ParameterObject[])
      if (p.in === 'query' && example?.[p.name] !== undefined) p.example = example[p.name];
    const fields = op.body?.atLeastOneOf;
    const media = (rendered.requestBody as oas31.RequestBodyObject | undefined)?.content['application/json'];
    if (fields && media?.schema) {
      (media.schema as oas31.SchemaObject).anyOf = fields.map((f) => ({ required: [f] }));
    }
  }
  return doc;
}

function build(): OpenApiDocument {
  const paths: ZodOpenApiPathsObject = {};
  for (const op of API_OPERATIONS) {
    const at = openApiPath(op.path);
    const item = paths[at] ?? {};
    paths[at] = item;
    if (item[op.method]) throw new Error(`${op.method.toUpperCase()} ${op.path} is described twice`);
    item[op.method] = operation(op);
  }
  const doc = createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Enclave HTTP API',
      version: enclaveVersion(),
      description:
        'The JSON API under /api/v1. Generated from the zod schemas the routes validate with; docs/HTTP-API.md says more.',
    },
    paths,
    components: {
      securitySchemes: {
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'enclave.sid',
          description: 'The session cookie, set at sign-in.',
        },
        csrf: {
          type: 'apiKey',
          in: 'header',
          name: 'X-CSRF-Token',
          description: "The session's CSRF token (GET /api/v1/csrf, or the sign-in answer's csrfToken).",
        },
        apiToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API token, `enc_…` (POST /api/v1/tokens).',
        },
      },
      responses: {
        InvalidInput: problem(
          '`invalid_input` (`details.issues`: `[{ path, message }]`), or a body that is not JSON.',
        ),
        Unauthenticated: problem('`login_required`, `unauthenticated`, `mfa_required`.'),
        Forbidden: problem('`forbidden`, `csrf_failed`, `reauth_required`, `tenant_suspended`, …'),
        NotFound: problem('`not_found`: no such thing, or an id that is not one.'),
        Problem: problem('Any other error: see docs/HTTP-API.md, "Errors".'),
      },
    },
  }) as OpenApiDocument;
  return finish(doc);
}

let document: OpenApiDocument | undefined;

/** The document, built on first use and kept (the routes and schemas do not change while running). */
export function openApiDocument(): OpenApiDocument {
  document ??= build();
  return document;
}

/** GET /api/v1/openapi.json: public and cacheable; serialised once, when the router is made at start. */
export function openApiRoutes(): Router {
  const body = JSON.stringify(openApiDocument());
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return Router().get(OPENAPI_PATH, (_req, res) => {
    // res.send answers 304 itself when If-None-Match names this ETag.
    res.set({ 'Cache-Control': 'public, max-age=3600', ETag: etag }).type('application/json').send(body);
  });
}
