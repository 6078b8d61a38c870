// A map keyed by (topic, partition) that builds no string key per lookup. The producer looks
// partitions up several times per batch and per sender pass (in-flight counts, idempotence
// state); a `${topic}:${partition}` key costs a string allocation and a hash of it every time.

export class TopicPartitionMap<V> {
  // Invariant: #size counts the defined entries of all arrays.
  readonly #byTopic = new Map<string, (V | undefined)[]>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(topic: string, partition: number): V | undefined {
    return this.#byTopic.get(topic)?.[partition];
  }

  set(topic: string, partition: number, value: V): void {
    let partitions = this.#byTopic.get(topic);
    if (partitions === undefined) {
      partitions = [];
      this.#byTopic.set(topic, partitions);
    }
    if (partitions[partition] === undefined) this.#size += 1;
    partitions[partition] = value;
  }

  delete(topic: string, partition: number): void {
    const partitions = this.#byTopic.get(topic);
    if (partitions === undefined || partitions[partition] === undefined) return;
    partitions[partition] = undefined;
    this.#size -= 1;
  }

  clear(): void {
    this.#byTopic.clear();
    this.#size = 0;
  }
}
