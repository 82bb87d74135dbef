// `enclave audit seal | public-key | prune | rotate-key`: the chain and its keys.
import { pruneAuditPayloads } from '../audit/retention.ts';
import { type SealedChain, seal } from '../audit/sealer.ts';
import { currentKeyId, loadSigner, publicKeys, rotateSigningKey, signingKeyFile } from '../audit/signing.ts';
import { connect } from './connect.ts';
import { printJson } from './output.ts';

export async function sealCommand(opts: { json?: boolean }): Promise<number> {
  const ctx = await connect(2);
  try {
    const signer = await loadSigner(ctx.config, ctx.pool);
    let sealed = 0;
    let checkpoints = 0;
    const chains = new Map<string, SealedChain>();
    for (;;) {
      const result = await seal(ctx.pool, signer);
      sealed += result.sealed;
      checkpoints += result.checkpoints;
      for (const c of result.chains) {
        const seen = chains.get(c.chain);
        chains.set(c.chain, seen ? { ...seen, to: c.to } : c);
      }
      if (!result.more) break;
    }
    if (opts.json) printJson({ sealed, checkpoints, chains: [...chains.values()] });
    else
      process.stdout.write(
        sealed === 0
          ? 'Nothing to seal.\n'
          : `Sealed ${sealed} event${sealed === 1 ? '' : 's'} into ${chains.size} chain${chains.size === 1 ? '' : 's'}; ${checkpoints} checkpoints signed.\n`,
      );
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function publicKeyCommand(opts: { all?: boolean; json?: boolean }): Promise<number> {
  const ctx = await connect(1);
  try {
    // A fresh installation has published nothing yet: make and publish the key first.
    if ((await currentKeyId(ctx.pool)) === null) await loadSigner(ctx.config, ctx.pool);
    const keys = await publicKeys(ctx.pool);
    const shown = opts.all ? keys : keys.filter((k) => k.retiredAt === null);
    if (opts.json)
      printJson(
        shown.map((k) => ({
          keyId: k.keyId,
          publicKey: k.pem,
          createdAt: k.createdAt,
          retiredAt: k.retiredAt,
          current: k.retiredAt === null,
        })),
      );
    else if (!opts.all) process.stdout.write(shown[0]?.pem ?? '');
    else
      for (const k of shown)
        process.stdout.write(
          `# key ${k.keyId} created ${k.createdAt.toISOString()} ${k.retiredAt ? `retired ${k.retiredAt.toISOString()}` : 'current'}\n${k.pem}`,
        );
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function pruneCommand(opts: { json?: boolean }): Promise<number> {
  const ctx = await connect(1);
  try {
    const result = await pruneAuditPayloads(ctx.pool, { retentionDays: ctx.config.AUDIT_RETENTION_DAYS });
    if (opts.json) printJson(result);
    else
      process.stdout.write(
        `Pruned the payload of ${result.pruned} audit entries from before ${result.cutoff.toISOString()} (hashes kept).\n`,
      );
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function rotateKeyCommand(opts: { json?: boolean }): Promise<number> {
  const ctx = await connect(1);
  try {
    const file = signingKeyFile(ctx.config);
    const result = await rotateSigningKey(ctx.pool, file);
    if (opts.json) printJson({ ...result, file });
    else
      process.stdout.write(
        `New audit signing key ${result.current} written to ${file}` +
          `${result.retired ? `; key ${result.retired} is retired and stays published` : ''}.\n` +
          'Give auditors the new public key: enclave audit public-key\n',
      );
    return 0;
  } finally {
    await ctx.close();
  }
}
