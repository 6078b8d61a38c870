// Finds the repository's `proto/` directory at run time.
//
// The compiled module lives at packages/quorum/dist/transport/, the sources at
// packages/quorum/src/transport/ (tests), and an installed layout may differ again; so instead of
// a fixed relative path we walk up from this file until a directory holds `proto/<file>`.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftkaError } from '@raftka/protocol';

/** Walks up from this module's directory; a bound keeps a broken install from looping forever. */
const PARENT_DIRECTORIES_MAX = 12;

export function findProtoDirectory(protoFile = 'quorum.proto', startDirectory?: string): string {
  let directory = startDirectory ?? path.dirname(fileURLToPath(import.meta.url));
  for (let step = 0; step < PARENT_DIRECTORIES_MAX; step++) {
    const candidate = path.join(directory, 'proto');
    if (existsSync(path.join(candidate, protoFile))) return candidate;
    const parent = path.dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  throw new RaftkaError('UNKNOWN_SERVER_ERROR', `cannot find proto/${protoFile} above ${startDirectory ?? 'the @raftka/quorum package'}; is the installation complete?`, {
    retriable: false,
  });
}
