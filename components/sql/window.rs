//! Event-time windows for the `sql` transform: which windows an event falls in, and
//! the watermark that says when a window is complete.
//!
//! Times are microseconds since the epoch. A window `[start, start + size)` closes
//! once the watermark — the latest event time seen minus `allowed_lateness` — reaches
//! its end; an event whose every window is already closed is late.
//!
//! The watermark never runs ahead of the wall clock plus `max_future_skew`: an event
//! stamped further in the future (a clock set to 2099) is windowed as arriving now
//! ([`Panes::event_time`]), so it cannot make every later event late.

use std::collections::BTreeMap;

/// Tumbling (`slide == size`) or hopping windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    pub size: i64,
    pub slide: i64,
}

impl WindowSpec {
    /// The start of every window holding time `t`, earliest first.
    pub fn starts(&self, t: i64) -> Vec<i64> {
        let last = t.div_euclid(self.slide) * self.slide;
        let mut starts = Vec::new();
        let mut s = last;
        while s + self.size > t {
            starts.push(s);
            s -= self.slide;
        }
        starts.reverse();
        starts
    }
}

/// Parses `500ms`, `10s`, `1m`, `2h`, `1d` into microseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30s, 1m or 1h"))?;
    let micros = match unit.trim() {
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return Err(format!("`{s}` has no unit (use ms, s, m, h or d)")),
    };
    n.checked_mul(micros).ok_or_else(|| format!("`{s}` is too long"))
}

/// Open windows keyed by start, each holding a `P` (the rows and their acknowledgements).
#[derive(Debug)]
pub struct Panes<P> {
    pub spec: WindowSpec,
    pub lateness: i64,
    /// How far ahead of the wall clock an event time may be and still be used.
    pub max_future_skew: i64,
    max_time: Option<i64>,
    open: BTreeMap<i64, P>,
}

impl<P: Default> Panes<P> {
    pub fn new(spec: WindowSpec, lateness: i64, max_future_skew: i64) -> Self {
        Panes {
            spec,
            lateness,
            max_future_skew,
            max_time: None,
            open: BTreeMap::new(),
        }
    }

    /// The watermark: windows ending at or before it are complete.
    pub fn watermark(&self) -> Option<i64> {
        self.max_time.map(|t| t - self.lateness)
    }

    /// The time an event stamped `t` is windowed at, seen at wall-clock `now`: `t`,
    /// or `now` when `t` is more than `max_future_skew` ahead (then `true`).
    pub fn event_time(&self, t: i64, now: i64) -> (i64, bool) {
        if t > now.saturating_add(self.max_future_skew) {
            (now, true)
        } else {
            (t, false)
        }
    }

    /// The open panes an event at `t` goes to; empty when it is late.
    pub fn assign(&mut self, t: i64) -> Vec<&mut P> {
        let watermark = self.watermark();
        self.max_time = Some(self.max_time.map_or(t, |m| m.max(t)));
        let size = self.spec.size;
        let open_starts: Vec<i64> = self
            .spec
            .starts(t)
            .into_iter()
            .filter(|s| watermark.is_none_or(|w| s + size > w))
            .collect();
        for s in &open_starts {
            self.open.entry(*s).or_default();
        }
        self.open
            .iter_mut()
            .filter(|(s, _)| open_starts.contains(s))
            .map(|(_, p)| p)
            .collect()
    }

    /// Removes and returns the panes the watermark has passed, oldest first.
    pub fn complete(&mut self) -> Vec<(i64, P)> {
        let Some(w) = self.watermark() else { return vec![] };
        let size = self.spec.size;
        let done: Vec<i64> = self.open.keys().copied().take_while(|s| s + size <= w).collect();
        done.into_iter()
            .filter_map(|s| self.open.remove(&s).map(|p| (s, p)))
            .collect()
    }

    /// Removes the oldest open pane (to bound memory, or at end of input).
    pub fn pop_oldest(&mut self) -> Option<(i64, P)> {
        self.open.pop_first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000_000;

    #[test]
    fn tumbling_and_hopping_starts() {
        let tumbling = WindowSpec { size: M, slide: M };
        assert_eq!(tumbling.starts(M + 5), vec![M]);
        assert_eq!(tumbling.starts(-1), vec![-M], "before the epoch too");
        let hopping = WindowSpec { size: 5 * M, slide: M };
        assert_eq!(hopping.starts(7 * M + 1), vec![3 * M, 4 * M, 5 * M, 6 * M, 7 * M]);
        assert_eq!(hopping.starts(7 * M), vec![3 * M, 4 * M, 5 * M, 6 * M, 7 * M]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m"), Ok(M));
        assert_eq!(parse_duration("250ms"), Ok(250_000));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn windows_close_when_the_watermark_passes_and_late_events_are_refused() {
        let mut panes: Panes<Vec<i64>> = Panes::new(WindowSpec { size: M, slide: M }, 10_000_000, 5 * M);
        panes.assign(5).into_iter().for_each(|p| p.push(5));
        panes.assign(M + 5_000_000).into_iter().for_each(|p| p.push(1));
        assert!(panes.complete().is_empty(), "watermark M - 5s: first window still open");
        // Within allowed lateness: still lands in the first window.
        panes.assign(M - 1).into_iter().for_each(|p| p.push(2));
        panes.assign(M + 20_000_000).into_iter().for_each(|p| p.push(3));
        let done = panes.complete();
        assert_eq!(done, vec![(0, vec![5, 2])]);
        assert!(panes.assign(30).is_empty(), "its window is closed: late");
        let rest: Vec<_> = std::iter::from_fn(|| panes.pop_oldest()).collect();
        assert_eq!(rest, vec![(M, vec![1, 3])]);
    }

    #[test]
    fn a_far_future_event_is_windowed_now_and_later_events_are_not_late() {
        let now = 1_000 * M;
        let mut panes: Panes<Vec<i64>> = Panes::new(WindowSpec { size: M, slide: M }, 0, 5 * M);
        assert_eq!(
            panes.event_time(now + 5 * M, now),
            (now + 5 * M, false),
            "within the skew"
        );
        let year_2099 = 4_070_908_800_000_000;
        let (t, clamped) = panes.event_time(year_2099, now);
        assert_eq!((t, clamped), (now, true));
        panes.assign(t).into_iter().for_each(|p| p.push(1));
        assert!(panes.watermark() <= Some(now), "the watermark stays at the wall clock");
        assert_eq!(panes.assign(now + 1).len(), 1, "an event of now is not late");
    }
}
