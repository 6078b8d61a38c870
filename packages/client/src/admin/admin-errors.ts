// The error of an admin call that acted on several items and failed for some of them. It lives
// apart from admin.ts so that every admin module (topics, configs, groups) reports per-item
// failures with the same class.

import { RaftkaError } from '@raftka/protocol';

/** Some items of an admin call failed; see `failures` for each one's error. */
export class AdminOperationError<Result> extends RaftkaError {
  readonly failures: ReadonlyMap<string, RaftkaError>;
  readonly results: readonly Result[];

  constructor(operation: string, failures: ReadonlyMap<string, RaftkaError>, results: readonly Result[]) {
    const [firstItem, firstError] = [...failures][0]!;
    super(
      firstError.code,
      `${operation} failed for ${failures.size} item(s): ${[...failures].map(([item, error]) => `${item}: ${error.code}`).join(', ')}; first: ${firstItem}: ${firstError.message}`,
      { cause: firstError, retriable: firstError.retriable },
    );
    this.name = 'AdminOperationError';
    this.failures = failures;
    this.results = results;
  }
}
