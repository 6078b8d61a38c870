// Topic name rules, as Kafka enforces them (org.apache.kafka.common.internals.Topic.validate):
// ASCII letters, digits, '.', '_' and '-'; at most 249 characters (a partition directory is named
// `<topic>-<partition>`, and 255 is the usual file-name limit); not '.' or '..' (they name
// directories). Two names that differ only in '.' versus '_' collide in metric names, which
// Kafka refuses too.

export const TOPIC_NAME_LENGTH_MAX = 249;

const LEGAL_TOPIC_NAME = /^[a-zA-Z0-9._-]+$/;

/** Why `name` is not a legal topic name, or `undefined` when it is. */
export function topicNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'topic name is empty';
  if (name === '.' || name === '..') return `topic name cannot be '${name}'`;
  if (name.length > TOPIC_NAME_LENGTH_MAX) return `topic name is ${name.length} characters long; at most ${TOPIC_NAME_LENGTH_MAX} are allowed`;
  if (!LEGAL_TOPIC_NAME.test(name)) return `topic name '${name}' contains characters other than ASCII letters, digits, '.', '_' and '-'`;
  return undefined;
}
