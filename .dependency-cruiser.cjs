// The layering rules (docs/ARCHITECTURE.md), checked by `npm run lint`:
//
//   kernel/          the shared kernel: uses nothing else in the repository
//   audit/verifier/  the offline audit format and verifier: nothing outside
//                    itself but Node and two small libraries (no database driver)
//   backup/ archive reader and format: offline too (node, tar, age, the
//                    verifier's canonical JSON and keys), so `backup verify` runs anywhere
//   tenancy/, audit/, backup/, jobs/   never the HTTP layer (server/)
//   tenancy/ and audit/       not each other (both write audit events through kernel/)
//   no circular imports anywhere
//
// test/ and bench/ may use anything. Type-only imports count too.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'kernel-stands-alone',
      comment: 'kernel/ is used by every other folder and uses none of them.',
      severity: 'error',
      from: { path: '^kernel/' },
      to: { pathNot: ['^kernel/', '^node_modules/'], dependencyTypesNot: ['core'] },
    },
    {
      name: 'verifier-offline',
      comment:
        'audit/verifier/ must run on a laptop with a bundle and a key: nothing outside itself ' +
        'but Node built-ins, canonicalize and tar-stream (no pg, MikroORM, argon2, kernel/ or server/).',
      severity: 'error',
      from: { path: '^audit/verifier/' },
      to: {
        pathNot: ['^audit/verifier/', '^node_modules/(canonicalize|tar-stream)/'],
        dependencyTypesNot: ['core'],
      },
    },
    {
      name: 'backup-reader-offline',
      comment:
        'An archive is checked offline with a public key alone: the format, the reader and their ' +
        "errors use Node built-ins, age-encryption and the audit verifier's canonical JSON and keys only.",
      severity: 'error',
      from: { path: '^backup/(archive-format|archive-reader|backup-errors)\\.ts$' },
      to: {
        pathNot: [
          '^backup/(archive-format|archive-reader|backup-errors)\\.ts$',
          '^audit/verifier/(canonical|keys|verification-error)\\.ts$',
          '^node_modules/(canonicalize|age-encryption|@noble)/',
        ],
        dependencyTypesNot: ['core'],
      },
    },
    {
      name: 'no-http-below-server',
      comment: 'tenancy/, audit/, backup/ and jobs/ sit below the HTTP layer and never import it.',
      severity: 'error',
      from: { path: '^(tenancy|audit|backup|jobs)/' },
      to: { path: '^server/' },
    },
    {
      name: 'tenancy-not-audit',
      comment: 'tenancy/ writes audit events through kernel/audit-inbox.ts, not audit/.',
      severity: 'error',
      from: { path: '^tenancy/' },
      to: { path: '^audit/' },
    },
    {
      name: 'audit-not-tenancy',
      comment: 'audit/ uses the database seam in kernel/, not tenancy/.',
      severity: 'error',
      from: { path: '^audit/' },
      to: { path: '^tenancy/' },
    },
    {
      name: 'no-circular',
      comment: 'Modules that import each other, directly or around a loop (type imports count too).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: '^node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
    cache: false,
  },
};
