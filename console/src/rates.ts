// Per-second rates derived from successive counter readings, with a bounded history
// for the small charts: a page left open all day keeps `capacity` points per series.

export type Point = [t: number, rate: number]

interface Series {
  lastT: number
  lastValue: number
  points: Point[]
}

export class Rates {
  private series = new Map<string, Series>()

  constructor(readonly capacity = 150) {}

  /**
   * Records `value` of counter `key` at `t` seconds; returns the rate since the
   * previous reading (undefined for the first). A counter that went down (a restart)
   * starts over.
   */
  update(key: string, t: number, value: number): number | undefined {
    const s = this.series.get(key)
    if (!s || value < s.lastValue || t <= s.lastT) {
      this.series.set(key, { lastT: t, lastValue: value, points: s && t > s.lastT ? s.points : [] })
      return undefined
    }
    const rate = (value - s.lastValue) / (t - s.lastT)
    s.lastT = t
    s.lastValue = value
    s.points.push([t, rate])
    if (s.points.length > this.capacity) s.points.splice(0, s.points.length - this.capacity)
    return rate
  }

  /** The latest rate of `key`, or 0. */
  latest(key: string): number {
    const p = this.series.get(key)?.points
    return p && p.length > 0 ? p[p.length - 1][1] : 0
  }

  history(key: string): Point[] {
    return this.series.get(key)?.points ?? []
  }

  /** Forgets series whose keys `keep` rejects. */
  retain(keep: (key: string) => boolean): void {
    for (const k of [...this.series.keys()]) if (!keep(k)) this.series.delete(k)
  }
}
