// Topic ids: 16 random bytes shown as 22 characters of unpadded base64url, like Kafka's Uuid.
//
// The controller draws the bytes from an injected random source and writes the id into the
// TopicRecord, so replaying the log never generates an id again and tests are reproducible.

const TOPIC_ID_BYTES = 16;

/** `random` is uniform in [0, 1). */
export function generateTopicId(random: () => number, isTaken: (topicId: string) => boolean = () => false): string {
  // Kafka regenerates ids that start with '-' (they read as command-line flags) and never uses the
  // all-zero id; a collision with an existing id is as unlikely as it is fatal, so it is redrawn too.
  for (;;) {
    const bytes = Buffer.alloc(TOPIC_ID_BYTES);
    for (let index = 0; index < TOPIC_ID_BYTES; index++) bytes[index] = Math.floor(random() * 256) & 0xff;
    const topicId = bytes.toString('base64url');
    if (!topicId.startsWith('-') && !bytes.every((byte) => byte === 0) && !isTaken(topicId)) return topicId;
  }
}
