// The Kafka view's rows, read from the gauges a `kafka` source reports in
// `GET /api/v1/components`: committed offset, end offset and lag per partition.

import { Component } from './types'

export const LAG = 'pipe_kafka_consumer_lag_messages'
export const COMMITTED = 'pipe_kafka_committed_offset'
export const END = 'pipe_kafka_end_offset'

export interface PartitionRow {
  component: string
  topic: string
  partition: number
  committed: number | null
  end: number | null
  lag: number | null
}

/** Splits `metric{a="x",b="y"}` into its name and labels (Prometheus escapes). */
export function parseSeries(series: string): { metric: string; labels: Record<string, string> } {
  const brace = series.indexOf('{')
  if (brace < 0) return { metric: series, labels: {} }
  const labels: Record<string, string> = {}
  const re = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g
  const body = series.slice(brace + 1, series.lastIndexOf('}'))
  for (let m = re.exec(body); m; m = re.exec(body)) {
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
  }
  return { metric: series.slice(0, brace), labels }
}

/** Whether the component is a `kafka` source. */
export function isKafkaSource(c: { kind: string; type: string }): boolean {
  return c.kind === 'source' && c.type === 'kafka'
}

export function partitionRows(components: Component[]): PartitionRow[] {
  const rows = new Map<string, PartitionRow>()
  for (const c of components) {
    if (!isKafkaSource(c)) continue
    for (const [series, value] of Object.entries(c.counters.gauges)) {
      const { metric, labels } = parseSeries(series)
      const field = metric === LAG ? 'lag' : metric === COMMITTED ? 'committed' : metric === END ? 'end' : null
      if (!field || labels.topic === undefined || labels.partition === undefined) continue
      const key = `${c.id}\u0000${labels.topic}\u0000${labels.partition}`
      let row = rows.get(key)
      if (!row) {
        row = { component: c.id, topic: labels.topic, partition: Number(labels.partition), committed: null, end: null, lag: null }
        rows.set(key, row)
      }
      row[field] = value
    }
  }
  return [...rows.values()].sort(
    (a, b) => a.component.localeCompare(b.component) || a.topic.localeCompare(b.topic) || a.partition - b.partition,
  )
}
