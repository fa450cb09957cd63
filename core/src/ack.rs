//! The ordered acknowledgement tracker.
//!
//! A stage reads units from an ordered source (a file, a Kafka partition),
//! hands each one to the next hop, and learns of its acknowledgement later and
//! out of order. The durable position (checkpoint, committed offset) may only
//! move to the end of the longest prefix of units that were *all*
//! acknowledged; otherwise a crash would skip an unacknowledged unit.
//!
//! `AckTracker` is that prefix: units are registered in source order and get
//! a sequence number; [`AckTracker::ack`] marks one done; [`AckTracker::advance`]
//! pops the acknowledged prefix and returns the position to persist.
//! Amortised O(1) per unit, memory proportional to the in-flight window.

use std::collections::VecDeque;

/// Sequence number of a registered unit, unique within one tracker.
pub type Seq = u64;

#[derive(Debug)]
pub struct AckTracker {
    /// `window[i]` is unit `base + i`: its end position and whether it is acked.
    window: VecDeque<(u64, bool)>,
    base: Seq,
    /// The position everything before which has been acknowledged.
    committed: u64,
}

impl AckTracker {
    /// A tracker whose durable position is `start` (nothing in flight).
    pub fn new(start: u64) -> Self {
        AckTracker {
            window: VecDeque::new(),
            base: 0,
            committed: start,
        }
    }

    /// Registers the next unit in source order. `end` is the position to
    /// persist once it and everything before it are acknowledged: for a line,
    /// the offset just past it; for a Kafka record, its offset + 1.
    pub fn register(&mut self, end: u64) -> Seq {
        self.window.push_back((end, false));
        self.base + self.window.len() as u64 - 1
    }

    /// The sequence number the next [`register`](Self::register) will return,
    /// so a caller can hand it to the next hop before it knows whether the
    /// hand-over succeeds.
    pub fn next_seq(&self) -> Seq {
        self.base + self.window.len() as u64
    }

    /// Marks a unit acknowledged. Unknown or already-advanced sequence numbers
    /// are ignored: after a rewind or a rebalance, late acknowledgements of
    /// abandoned units must not count.
    pub fn ack(&mut self, seq: Seq) {
        if let Some(idx) = seq.checked_sub(self.base) {
            if let Some(slot) = self.window.get_mut(idx as usize) {
                slot.1 = true;
            }
        }
    }

    /// Pops the acknowledged prefix. Returns the new durable position if it moved.
    pub fn advance(&mut self) -> Option<u64> {
        let mut moved = None;
        while let Some(&(end, true)) = self.window.front() {
            self.window.pop_front();
            self.base += 1;
            self.committed = end;
            moved = Some(end);
        }
        moved
    }

    /// Everything before this position has been acknowledged.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Units registered but not yet advanced past.
    pub fn in_flight(&self) -> usize {
        self.window.len()
    }

    /// Forgets every unit in flight (they will be sent again from
    /// [`committed`](Self::committed)); their late acknowledgements are ignored
    /// because the sequence numbers are never reused.
    pub fn rewind(&mut self) -> u64 {
        self.base += self.window.len() as u64;
        self.window.clear();
        self.committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_only_over_a_fully_acked_prefix() {
        let mut t = AckTracker::new(0);
        let a = t.register(10);
        let b = t.register(20);
        let c = t.register(30);
        t.ack(c);
        assert_eq!(t.advance(), None, "c is acked but a and b are not");
        t.ack(a);
        assert_eq!(t.advance(), Some(10));
        t.ack(b);
        assert_eq!(t.advance(), Some(30));
        assert_eq!(t.committed(), 30);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn duplicate_and_stale_acks_are_harmless() {
        let mut t = AckTracker::new(5);
        let a = t.register(6);
        t.ack(a);
        t.ack(a);
        assert_eq!(t.advance(), Some(6));
        t.ack(a);
        t.ack(999);
        assert_eq!(t.advance(), None);
        assert_eq!(t.committed(), 6);
    }

    #[test]
    fn rewind_drops_in_flight_and_ignores_their_late_acks() {
        let mut t = AckTracker::new(0);
        let a = t.register(1);
        let b = t.register(2);
        t.ack(a);
        t.advance();
        assert_eq!(t.rewind(), 1);
        t.ack(b);
        assert_eq!(t.advance(), None);
        let c = t.register(2);
        assert_ne!(b, c, "sequence numbers are never reused");
        t.ack(c);
        assert_eq!(t.advance(), Some(2));
    }

    #[test]
    fn random_ack_orders_never_overtake_an_unacked_unit() {
        // A small deterministic shuffle (LCG) over many orders.
        let mut seed = 12345u64;
        for _ in 0..200 {
            let mut t = AckTracker::new(0);
            let n = 50u64;
            let seqs: Vec<_> = (1..=n).map(|end| t.register(end)).collect();
            let mut order = seqs.clone();
            for i in (1..order.len()).rev() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (seed >> 33) as usize % (i + 1));
            }
            let mut acked = vec![false; n as usize];
            for s in order {
                t.ack(s);
                acked[s as usize] = true;
                t.advance();
                let prefix = acked.iter().take_while(|a| **a).count() as u64;
                assert_eq!(t.committed(), prefix);
            }
        }
    }
}

/// One [`AckTracker`] per Kafka partition a consumer reads, for stages that
/// consume (parser, indexer). Positions are "next offset to consume", i.e.
/// what Kafka's committed offset means.
#[derive(Debug, Default)]
pub struct PartitionAcks {
    parts: Vec<Partition>,
}

#[derive(Debug)]
struct Partition {
    topic: String,
    partition: i32,
    tracker: AckTracker,
    /// Offset of the next record we expect; anything else means the consumer
    /// was repositioned (rebalance, seek) and in-flight records are abandoned.
    expected: i64,
    /// Last position handed to [`PartitionAcks::take_advanced`].
    stored: u64,
}

impl PartitionAcks {
    /// Registers a consumed record; returns (slot, seq) to route its ack.
    pub fn register(&mut self, topic: &str, partition: i32, offset: i64) -> (usize, Seq) {
        self.register_parts(topic, partition, offset, 1)
    }

    /// Registers a consumed record made of `parts` units acknowledged one by
    /// one (the documents of a batch record); returns the slot and the first
    /// unit's seq, the others following in order. The record's offset moves
    /// past it only once every part is acknowledged: all parts but the last
    /// end *at* the record, so a commit in between makes it come again whole.
    pub fn register_parts(&mut self, topic: &str, partition: i32, offset: i64, parts: usize) -> (usize, Seq) {
        let slot = match self
            .parts
            .iter()
            .position(|p| p.partition == partition && p.topic == topic)
        {
            Some(i) => i,
            None => {
                self.parts.push(Partition {
                    topic: topic.to_string(),
                    partition,
                    tracker: AckTracker::new(offset as u64),
                    expected: offset,
                    stored: offset as u64,
                });
                self.parts.len() - 1
            }
        };
        let p = &mut self.parts[slot];
        if offset != p.expected {
            // Redelivery after a rebalance or a seek: start over from here.
            p.tracker.rewind();
            p.tracker.committed = offset as u64;
            p.stored = p.stored.min(offset as u64);
        }
        p.expected = offset + 1;
        let first = p.tracker.next_seq();
        for _ in 1..parts {
            p.tracker.register(offset as u64);
        }
        p.tracker.register(offset as u64 + 1);
        (slot, first)
    }

    /// Marks a unit acknowledged and moves past the acknowledged prefix at
    /// once, so that [`in_flight`](Self::in_flight) drops with the
    /// acknowledgements themselves. (It used to move only when offsets were
    /// stored, which a parser paused for too much in flight never reached:
    /// it stayed paused for good.)
    pub fn ack(&mut self, slot: usize, seq: Seq) {
        if let Some(p) = self.parts.get_mut(slot) {
            p.tracker.ack(seq);
            p.tracker.advance();
        }
    }

    /// (topic, partition, position) of every partition whose acknowledged
    /// position moved since the last call. [`ack`](Self::ack) has already
    /// moved each tracker past its acknowledged prefix.
    pub fn take_advanced(&mut self) -> Vec<(String, i32, u64)> {
        let mut out = Vec::new();
        for p in &mut self.parts {
            let pos = p.tracker.committed();
            if pos > p.stored {
                p.stored = pos;
                out.push((p.topic.clone(), p.partition, pos));
            }
        }
        out
    }

    /// Records consumed but not yet acknowledged, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.parts.iter().map(|p| p.tracker.in_flight()).sum()
    }
}

#[cfg(test)]
mod partition_tests {
    use super::*;

    #[test]
    fn acknowledgements_lower_what_is_in_flight_without_storing() {
        let mut acks = PartitionAcks::default();
        let routes: Vec<_> = (0..10).map(|o| acks.register("t", o % 2, 100 + o as i64 / 2)).collect();
        assert_eq!(acks.in_flight(), 10);
        for &(slot, seq) in routes.iter().skip(1).rev() {
            acks.ack(slot, seq);
        }
        // The first record is not acknowledged: only the other partition moved.
        assert_eq!(acks.in_flight(), 5);
        acks.ack(routes[0].0, routes[0].1);
        assert_eq!(acks.in_flight(), 0);
        let mut moved = acks.take_advanced();
        moved.sort();
        assert_eq!(moved, vec![("t".to_string(), 0, 105), ("t".to_string(), 1, 105)]);
    }

    #[test]
    fn positions_are_next_offsets_per_partition() {
        let mut acks = PartitionAcks::default();
        let a = acks.register("t", 0, 10);
        let b = acks.register("t", 1, 5);
        let c = acks.register("t", 0, 11);
        acks.ack(c.0, c.1);
        assert!(acks.take_advanced().is_empty(), "offset 10 is not acked yet");
        acks.ack(a.0, a.1);
        acks.ack(b.0, b.1);
        let mut got = acks.take_advanced();
        got.sort();
        assert_eq!(got, vec![("t".into(), 0, 12), ("t".into(), 1, 6)]);
        assert!(acks.take_advanced().is_empty());
    }

    #[test]
    fn redelivery_abandons_in_flight_records() {
        let mut acks = PartitionAcks::default();
        let a = acks.register("t", 0, 10);
        let _b = acks.register("t", 0, 11);
        // Rebalance: the partition comes back from offset 10.
        let a2 = acks.register("t", 0, 10);
        acks.ack(a.0, a.1); // stale ack of the abandoned delivery
        assert!(acks.take_advanced().is_empty());
        acks.ack(a2.0, a2.1);
        assert_eq!(acks.take_advanced(), vec![("t".into(), 0, 11)]);
    }

    #[test]
    fn a_record_of_several_parts_moves_on_only_when_all_are_acked() {
        let mut acks = PartitionAcks::default();
        let (slot, first) = acks.register_parts("t", 0, 7, 3);
        let after = acks.register("t", 0, 8);
        acks.ack(after.0, after.1);
        acks.ack(slot, first);
        acks.ack(slot, first + 2);
        assert!(acks.take_advanced().is_empty(), "part 2 of record 7 is not acked");
        acks.ack(slot, first + 1);
        assert_eq!(acks.take_advanced(), vec![("t".into(), 0, 9)]);
        assert_eq!(acks.in_flight(), 0);
    }
}
