// What every view shares: the topology, the latest component counters polled every
// two seconds (paused while the tab is hidden), and the rates derived from them.

import { getJson } from './api'
import { Rates } from './rates'
import { Component, Components, Topology } from './types'

export const POLL_MS = 2000

export type Listener = () => void

export class Live {
  topology: Topology = { components: [] }
  components: Component[] = []
  uptime = 0
  readonly rates = new Rates()
  error: unknown = null
  private listeners = new Set<Listener>()
  private timer: number | undefined

  onUpdate(l: Listener): () => void {
    this.listeners.add(l)
    return () => this.listeners.delete(l)
  }

  component(id: string): Component | undefined {
    return this.components.find((c) => c.id === id)
  }

  async start(): Promise<void> {
    this.topology = await getJson<Topology>('/api/v1/topology')
    await this.poll()
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) void this.poll()
    })
  }

  async poll(): Promise<void> {
    window.clearTimeout(this.timer)
    try {
      const answer = await getJson<Components>('/api/v1/components')
      const t = performance.now() / 1000
      this.components = answer.components
      this.uptime = answer.uptime_seconds
      for (const c of answer.components) {
        this.rates.update(`${c.id}:in`, t, c.counters.received_events)
        this.rates.update(`${c.id}:out`, t, c.counters.sent_events)
        for (const [output, n] of Object.entries(c.counters.outputs)) this.rates.update(`${c.id}:output:${output}`, t, n)
      }
      this.error = null
    } catch (e) {
      this.error = e
    }
    this.listeners.forEach((l) => l())
    if (!document.hidden) this.timer = window.setTimeout(() => void this.poll(), POLL_MS)
  }
}

/** The rate key of output `output` (null: the default one) of component `id`. */
export function outputKey(id: string, output: string | null): string {
  return `${id}:output:${output ?? '_default'}`
}
