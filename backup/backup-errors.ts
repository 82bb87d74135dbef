// The errors of backup and restore. An archive that cannot be trusted or read
// is refused with one reason from a fixed list (ArchiveRefusal) and one line a
// person understands; it travels as ArchiveRefusedError so a caller (the CLI,
// the admin API, a restore) can act on the reason without parsing the text.
//
// Offline: imported by the archive reader, so nothing here may touch a
// database, a server or configuration.

export type ArchiveRefusal =
  | 'unreadable' // the file cannot be read, or an encrypted archive fails age's authentication (damaged or cut short)
  | 'truncated' // the file ends before the tar's end marker
  | 'not-an-archive' // not a tar whose first entry is manifest.json, or a damaged tar header
  | 'encrypted-no-identity' // age-encrypted, and no identity was given
  | 'wrong-identity' // age-encrypted to recipients none of the given identities match
  | 'unsupported-format' // manifest.format is not the one this reader reads
  | 'manifest-invalid' // not canonical JSON, or a field missing or of the wrong type
  | 'manifest-checksum' // manifestSha256 is not the SHA-256 of the canonical manifest
  | 'unknown-key' // signed by a key that is not among the trusted ones
  | 'bad-signature'
  | 'part-missing' // a table's part is not in the archive (or not where the manifest order puts it)
  | 'part-mismatch' // a part's size, SHA-256, decompressed SHA-256 or row count differs from the manifest
  | 'unexpected-entry' // a tar entry the manifest does not list, not a regular file, or data after the end
  | 'changed'; // the file changed between checkArchive and readParts

export class BackupError extends Error {
  override name = 'BackupError';
}

export class ArchiveRefusedError extends BackupError {
  override name = 'ArchiveRefusedError';
  readonly reason: ArchiveRefusal;
  /** The tar entry concerned (manifest.json or a part), when there is one. */
  readonly entry: string | undefined;
  constructor(reason: ArchiveRefusal, message: string, options?: ErrorOptions & { entry?: string }) {
    super(message, options);
    this.reason = reason;
    this.entry = options?.entry;
  }
}
