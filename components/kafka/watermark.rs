//! Which offsets of a partition may be committed: a record's offset is committable
//! only when it and every earlier record of the partition that this consumer handed
//! downstream are acknowledged. Acknowledgements arrive out of order (two sinks, a
//! retry); the committable offset is the contiguous watermark.
//!
//! A partition's work is tracked per batch: the source emits records of a partition
//! in offset order, each batch covering a range ending at `last`. A batch that comes
//! back errored holds the partition's watermark and asks for a rewind: the source
//! forgets every batch of the partition still in flight ([`Watermarks::rewind`]: a
//! new generation, so their acknowledgements are ignored) and reads again from the
//! first record not yet acknowledged. Records after the errored batch are read twice
//! (duplicates), never skipped.

use std::collections::{BTreeMap, VecDeque};

/// The acknowledgement state of one partition.
#[derive(Debug, Default)]
pub struct PartitionWatermark {
    /// Batches in emission order: (last offset, acknowledged).
    pending: VecDeque<(i64, bool)>,
    /// The next offset to commit (one past the last acknowledged record).
    committable: Option<i64>,
    /// The first offset sent downstream since the partition was assigned: where
    /// reading starts again while nothing is acknowledged.
    first: Option<i64>,
    /// An errored batch was seen: the watermark waits for the rewind.
    errored: bool,
    /// Rewound, and no batch read again has been acknowledged yet.
    rewound: bool,
}

impl PartitionWatermark {
    /// Records that a batch of offsets `first..=last` was sent downstream.
    pub fn track(&mut self, first: i64, last: i64) {
        self.first.get_or_insert(first);
        self.pending.push_back((last, false));
    }

    /// Marks the batch ending at `last` acknowledged (`ok`) or errored, and moves the
    /// watermark over every acknowledged batch at the front. True when this is the
    /// partition's first errored batch since the last rewind: it needs one.
    pub fn ack(&mut self, last: i64, ok: bool) -> bool {
        // Settled either way: an errored batch is no longer in flight.
        if let Ok(i) = self.pending.binary_search_by_key(&last, |(o, _)| *o) {
            self.pending[i].1 = true;
        }
        if !ok {
            let first_error = !self.errored;
            self.errored = true;
            return first_error;
        }
        if self.errored {
            return false;
        }
        self.rewound = false;
        while let Some(&(offset, true)) = self.pending.front() {
            self.committable = Some(offset + 1);
            self.pending.pop_front();
        }
        false
    }

    /// Forgets the batches in flight and returns the offset to read again from: the
    /// first record not acknowledged.
    pub fn rewind(&mut self) -> Option<i64> {
        self.pending.clear();
        self.errored = false;
        self.rewound = true;
        self.committable.or(self.first)
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
    pub fn track(&mut self, key: &PartitionKey, first: i64, last: i64) -> u64 {
        let generation = self.generation;
        let entry = self
            .partitions
            .entry(key.clone())
            .or_insert_with(|| (generation, PartitionWatermark::default()));
        entry.1.track(first, last);
        entry.0
    }

    /// An acknowledgement for the batch ending at `last`, tracked in `generation`.
    /// True when the batch errored and the partition must be rewound.
    pub fn ack(&mut self, key: &PartitionKey, generation: u64, last: i64, ok: bool) -> bool {
        match self.partitions.get_mut(key) {
            Some((g, w)) if *g == generation => w.ack(last, ok),
            _ => false,
        }
    }

    /// Rewinds a partition after an errored batch: what is in flight for it is
    /// forgotten (a new generation) and (offset to read again from, generation)
    /// returned; `None` when the partition is no longer held.
    pub fn rewind(&mut self, key: &PartitionKey) -> Option<(i64, u64)> {
        let (g, w) = self.partitions.get_mut(key)?;
        let offset = w.rewind()?;
        self.generation += 1;
        *g = self.generation;
        Some((offset, *g))
    }

    /// The generation a partition is tracked in, if held.
    pub fn generation_of(&self, key: &PartitionKey) -> Option<u64> {
        self.partitions.get(key).map(|(g, _)| *g)
    }

    /// True while a rewound partition has had no batch acknowledged since.
    pub fn recovering(&self) -> bool {
        self.partitions.values().any(|(_, w)| w.rewound || w.errored)
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
            w.track(last - 9, last);
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
        w.track(0, 5);
        w.track(50, 100);
        w.ack(100, true);
        w.ack(5, true);
        assert_eq!(w.committable(), Some(101));
    }

    #[test]
    fn an_errored_batch_holds_the_partition_until_it_is_read_again() {
        let mut w = PartitionWatermark::default();
        w.track(0, 9);
        w.track(10, 19);
        w.track(20, 29);
        assert!(!w.ack(9, true));
        assert!(w.ack(19, false), "the first error asks for a rewind");
        assert!(!w.ack(29, true));
        assert_eq!(w.committable(), Some(10), "never past the errored batch");
        assert_eq!(
            w.in_flight(),
            0,
            "an errored batch is settled: shutdown does not wait for it"
        );
        assert_eq!(w.rewind(), Some(10), "read again from the first unacknowledged record");
        assert_eq!(w.in_flight(), 0, "what was in flight is forgotten");
        // Read again: 10..=19 and 20..=29 come back acknowledged; progress resumes.
        w.track(10, 19);
        w.track(20, 29);
        w.ack(19, true);
        w.ack(29, true);
        assert_eq!(w.committable(), Some(30));
    }

    #[test]
    fn an_error_before_any_acknowledgement_rewinds_to_the_first_offset_read() {
        let mut w = PartitionWatermark::default();
        w.track(500, 509);
        assert!(w.ack(509, false));
        assert_eq!(w.rewind(), Some(500));
        assert!(w.rewound);
        w.track(500, 509);
        assert!(w.ack(509, false), "erroring again asks for another rewind");
        assert_eq!(w.rewind(), Some(500));
    }

    #[test]
    fn acknowledgements_from_before_a_rewind_are_ignored() {
        let p: PartitionKey = ("t".into(), 0);
        let mut ws = Watermarks::default();
        let g = ws.track(&p, 0, 9);
        let g2 = ws.track(&p, 10, 19);
        assert!(ws.ack(&p, g, 9, false));
        let (offset, g_new) = ws.rewind(&p).unwrap();
        assert_eq!(offset, 0);
        assert!(ws.recovering());
        assert!(!ws.ack(&p, g2, 19, true), "stale");
        assert_eq!(ws.to_commit(), vec![], "a stale acknowledgement commits nothing");
        assert_eq!(ws.generation_of(&p), Some(g_new));
        assert_eq!(ws.track(&p, 0, 19), g_new);
        ws.ack(&p, g_new, 19, true);
        assert_eq!(ws.to_commit(), vec![(p, 20)]);
        assert!(!ws.recovering());
    }

    #[test]
    fn rebalance_mid_batch_ignores_stale_acks() {
        let p0: PartitionKey = ("t".into(), 0);
        let p1: PartitionKey = ("t".into(), 1);
        let mut ws = Watermarks::default();
        let g0 = ws.track(&p0, 0, 9);
        let g0b = ws.track(&p0, 10, 19);
        let g1 = ws.track(&p1, 0, 4);
        ws.ack(&p0, g0, 9, true);
        ws.ack(&p1, g1, 4, true);
        let mut first = ws.to_commit();
        first.sort();
        assert_eq!(first, vec![(p0.clone(), 10), (p1.clone(), 5)]);
        // p0 is revoked while its second batch is in flight, then assigned again and
        // re-read from the committed offset 10.
        ws.revoke(std::slice::from_ref(&p0));
        let g0_new = ws.track(&p0, 10, 19);
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
