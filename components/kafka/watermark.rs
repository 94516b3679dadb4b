//! Which offsets of a partition may be committed: a record's offset is committable
//! only when it and every earlier record of the partition that this consumer handed
//! downstream are acknowledged. Acknowledgements arrive out of order (two sinks, a
//! retry); the committable offset is the contiguous watermark.
//!
//! A partition's work is tracked per batch: the source emits records of a partition
//! in offset order, each batch covering a range ending at `last`. A batch that comes
//! back errored freezes the partition's watermark, so the records are read again
//! after a restart or a rebalance.

use std::collections::{BTreeMap, VecDeque};

/// The acknowledgement state of one partition.
#[derive(Debug, Default)]
pub struct PartitionWatermark {
    /// Batches in emission order: (last offset, acknowledged).
    pending: VecDeque<(i64, bool)>,
    /// The next offset to commit (one past the last acknowledged record).
    committable: Option<i64>,
    /// An errored batch was seen: never move on from here.
    frozen: bool,
}

impl PartitionWatermark {
    /// Records that a batch ending at offset `last` was sent downstream.
    pub fn track(&mut self, last: i64) {
        self.pending.push_back((last, false));
    }

    /// Marks the batch ending at `last` acknowledged (`ok`) or errored, and moves the
    /// watermark over every acknowledged batch at the front.
    pub fn ack(&mut self, last: i64, ok: bool) {
        if !ok {
            self.frozen = true;
        }
        if let Ok(i) = self.pending.binary_search_by_key(&last, |(o, _)| *o) {
            self.pending[i].1 = true;
        }
        if self.frozen {
            return;
        }
        while let Some(&(offset, true)) = self.pending.front() {
            self.committable = Some(offset + 1);
            self.pending.pop_front();
        }
    }

    /// The offset to commit, if any record is acknowledged.
    pub fn committable(&self) -> Option<i64> {
        self.committable
    }

    /// Batches sent but not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.pending.iter().filter(|(_, done)| !done).count()
    }
}

/// A partition, as (topic, partition).
pub type PartitionKey = (String, i32);

/// Every partition this consumer holds, and what was last committed for each.
#[derive(Debug, Default)]
pub struct Watermarks {
    /// Partitions currently assigned, with the generation they were assigned in.
    partitions: BTreeMap<PartitionKey, (u64, PartitionWatermark)>,
    generation: u64,
}

impl Watermarks {
    /// The generation a batch is tracked under; acknowledgements from an older
    /// assignment of the same partition are ignored.
    pub fn track(&mut self, key: &PartitionKey, last: i64) -> u64 {
        let generation = self.generation;
        let entry = self
            .partitions
            .entry(key.clone())
            .or_insert_with(|| (generation, PartitionWatermark::default()));
        entry.1.track(last);
        entry.0
    }

    /// An acknowledgement for the batch ending at `last`, tracked in `generation`.
    pub fn ack(&mut self, key: &PartitionKey, generation: u64, last: i64, ok: bool) {
        if let Some((g, w)) = self.partitions.get_mut(key)
            && *g == generation
        {
            w.ack(last, ok);
        }
    }

    /// Offsets to commit: every partition with an acknowledged record. Committed
    /// again each time, so a commit that failed (brokers away) is simply retried.
    pub fn to_commit(&self) -> Vec<(PartitionKey, i64)> {
        self.partitions
            .iter()
            .filter_map(|(key, (_, w))| Some((key.clone(), w.committable()?)))
            .collect()
    }

    /// Forgets revoked partitions (after their acknowledged offsets were committed):
    /// acknowledgements still in flight for them are ignored from now on.
    pub fn revoke(&mut self, keys: &[PartitionKey]) {
        self.generation += 1;
        for key in keys {
            self.partitions.remove(key);
        }
    }

    /// Batches sent but not acknowledged, over every partition.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|(_, w)| w.in_flight()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_acks_commit_only_the_contiguous_prefix() {
        let mut w = PartitionWatermark::default();
        for last in [9, 19, 29, 39] {
            w.track(last);
        }
        w.ack(29, true);
        assert_eq!(w.committable(), None, "batch 0..9 is not acknowledged yet");
        w.ack(9, true);
        assert_eq!(w.committable(), Some(10));
        w.ack(19, true);
        assert_eq!(w.committable(), Some(30), "19 then the already-acked 29");
        assert_eq!(w.in_flight(), 1);
        w.ack(39, true);
        assert_eq!(w.committable(), Some(40));
    }

    #[test]
    fn gaps_in_offsets_are_fine() {
        // Compacted topics and transaction markers leave holes between batches.
        let mut w = PartitionWatermark::default();
        w.track(5);
        w.track(100);
        w.ack(100, true);
        w.ack(5, true);
        assert_eq!(w.committable(), Some(101));
    }

    #[test]
    fn an_errored_batch_freezes_the_partition() {
        let mut w = PartitionWatermark::default();
        w.track(9);
        w.track(19);
        w.track(29);
        w.ack(9, true);
        w.ack(19, false);
        w.ack(29, true);
        assert_eq!(w.committable(), Some(10), "never past the errored batch");
    }

    #[test]
    fn rebalance_mid_batch_ignores_stale_acks() {
        let p0: PartitionKey = ("t".into(), 0);
        let p1: PartitionKey = ("t".into(), 1);
        let mut ws = Watermarks::default();
        let g0 = ws.track(&p0, 9);
        let g0b = ws.track(&p0, 19);
        let g1 = ws.track(&p1, 4);
        ws.ack(&p0, g0, 9, true);
        ws.ack(&p1, g1, 4, true);
        let mut first = ws.to_commit();
        first.sort();
        assert_eq!(first, vec![(p0.clone(), 10), (p1.clone(), 5)]);
        // p0 is revoked while its second batch is in flight, then assigned again and
        // re-read from the committed offset 10.
        ws.revoke(std::slice::from_ref(&p0));
        let g0_new = ws.track(&p0, 19);
        ws.ack(&p0, g0b, 19, true);
        assert_eq!(
            ws.to_commit(),
            vec![(p1.clone(), 5)],
            "an acknowledgement from the old assignment commits nothing"
        );
        ws.ack(&p0, g0_new, 19, true);
        assert_eq!(ws.to_commit(), vec![(p0, 20), (p1, 5)]);
        assert_eq!(ws.in_flight(), 0);
    }
}
