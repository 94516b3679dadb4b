// A bounded list that keeps the newest `capacity` items: the tap view's rows, so a
// page left open on a busy output holds at most that many.

export class Ring<T> {
  private items: T[] = []

  constructor(readonly capacity: number) {}

  /** Appends `item`; returns the items that fell off the front. */
  push(item: T): T[] {
    this.items.push(item)
    return this.items.length > this.capacity ? this.items.splice(0, this.items.length - this.capacity) : []
  }

  get length(): number {
    return this.items.length
  }

  clear(): void {
    this.items = []
  }

  toArray(): T[] {
    return this.items.slice()
  }
}

/** Whether `text` holds every whitespace-separated word of `filter`, ignoring case. */
export function matchesFilter(text: string, filter: string): boolean {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean)
  if (words.length === 0) return true
  const t = text.toLowerCase()
  return words.every((w) => t.includes(w))
}
