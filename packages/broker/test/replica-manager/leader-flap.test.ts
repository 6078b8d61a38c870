// Leadership flapping through a replica that appends nothing while it leads (seen after restarting
// every node at once: epochs e -> e+1 -> e+2 within milliseconds). Becoming leader records the
// epoch's start offset at the log end (KIP-101), so the brief leader's log ends with an epoch entry
// that covers no record and that the next leader never had. As a follower it must drop that entry
// when it reconciles, or every fetch names an epoch the leader answers with a diverging epoch
// ending exactly at our log end: a silent loop that never fetches and never rejoins the ISR.

import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster, batch, waitFor } from './cluster-fixture.js';

let cluster: TestCluster | undefined;

afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('leader flapping through a replica that appended nothing', () => {
  it('the brief leader drops its empty epoch, fetches from the final leader, catches up and rejoins the ISR', async () => {
    const c = (cluster = await TestCluster.create());
    for (const id of [1, 2]) await c.startBroker(id);
    await c.createTopic('flap', [[1, 2]], { 'min.insync.replicas': '1' });
    expect(await c.broker(1).client.produce({ topic: 'flap', records: batch('a', 3), acks: -1 })).toMatchObject({ code: 'NONE', baseOffset: 0 });

    // Epoch 1: broker 2 leads and records epoch 1 at offset 3, but nothing is appended in it.
    await c.changePartition('flap', 0, { leader: 2, isr: [1, 2] });
    expect(c.partitionState('flap')).toMatchObject({ leader: 2, leaderEpoch: 1 });
    // Epoch 2, right away: broker 1 leads again (epoch 2 at offset 3; it never had epoch 1) and
    // broker 2 is out of the ISR, so only a working follower gets it back in.
    await c.changePartition('flap', 0, { leader: 1, isr: [1] });
    expect(c.partitionState('flap')).toMatchObject({ leader: 1, leaderEpoch: 2, isr: [1] });
    const follower = c.broker(2).replicaManager;
    expect(follower.replicaStatus('flap', 0)).toMatchObject({ role: 'follower', leaderId: 1, leaderEpoch: 2 });

    expect(await c.broker(1).client.produce({ topic: 'flap', records: batch('b', 2), acks: 1 })).toMatchObject({ code: 'NONE', baseOffset: 3 });
    await waitFor(() => follower.replicaStatus('flap', 0)!.logEndOffset === 5, 'the follower to copy the epoch-2 records', 10_000);
    await waitFor(() => c.partitionState('flap').isr.includes(2), 'the follower to rejoin the ISR', 10_000);
    await waitFor(() => follower.replicaStatus('flap', 0)!.highWatermark === 5, 'the follower HW to follow the leader', 10_000);
    // Its own empty epoch 1 is gone; its log carries the final leader's epochs only.
    expect(follower.logManager.getLog('flap', 0)!.epochEntries).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 3 },
    ]);
  });
});
