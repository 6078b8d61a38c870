// The part of Kafka's "consumer" embedded protocol the coordinator needs to read: the topics in a
// member's subscription (ConsumerProtocolSubscription). The coordinator otherwise treats protocol
// metadata as opaque bytes; it looks inside only for OffsetDelete (KIP-496), which refuses to
// delete offsets of a topic the group still consumes (GROUP_SUBSCRIBED_TO_TOPIC).
//
// Layout (all versions non-flexible): version int16, topics array (int32 count, int16-length
// strings), then fields we do not need (user data, owned partitions, generation, rack).

/** The protocol type consumers use; only its metadata is parsed for subscriptions. */
export const CONSUMER_PROTOCOL_TYPE = 'consumer';

/**
 * The topics of a ConsumerProtocolSubscription, or `undefined` when the bytes do not parse
 * (the caller must then assume the member may consume any topic, as Kafka does).
 */
export function decodeSubscriptionTopics(metadata: Buffer): string[] | undefined {
  try {
    let position = 0;
    if (metadata.length < 6) return undefined;
    const version = metadata.readInt16BE(position);
    position += 2;
    if (version < 0) return undefined;
    const count = metadata.readInt32BE(position);
    position += 4;
    if (count < 0 || count > metadata.length) return undefined;
    const topics: string[] = [];
    for (let i = 0; i < count; i++) {
      const length = metadata.readInt16BE(position);
      position += 2;
      if (length < 0 || position + length > metadata.length) return undefined;
      topics.push(metadata.toString('utf8', position, position + length));
      position += length;
    }
    return topics;
  } catch {
    // A RangeError from a read past the end: the metadata is not a consumer subscription.
    return undefined;
  }
}

/** A version-0 ConsumerProtocolSubscription for `topics` (no user data), as a consumer sends it. */
export function encodeSubscription(topics: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.allocUnsafe(6);
  header.writeInt16BE(0, 0);
  header.writeInt32BE(topics.length, 2);
  parts.push(header);
  for (const topic of topics) {
    const bytes = Buffer.from(topic, 'utf8');
    const length = Buffer.allocUnsafe(2);
    length.writeInt16BE(bytes.length);
    parts.push(length, bytes);
  }
  const noUserData = Buffer.allocUnsafe(4);
  noUserData.writeInt32BE(-1);
  parts.push(noUserData);
  return Buffer.concat(parts);
}
