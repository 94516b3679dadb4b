// The shapes of pipe's API answers the console reads (see docs/operations.md).

export type Kind = 'source' | 'transform' | 'sink'

/** One node of `GET /api/v1/topology`. */
export interface NodeInfo {
  id: string
  kind: Kind
  type: string
  /** What it reads: `id` (a default output) or `id.name` (a named output). */
  inputs: string[]
  /** Its named outputs besides the default one. */
  outputs: string[]
}

export interface Topology {
  components: NodeInfo[]
}

export interface Counters {
  received_events: number
  received_bytes: number
  sent_events: number
  sent_bytes: number
  outputs: Record<string, number>
  errors: Record<string, number>
  discarded: Record<string, number>
  counters: Record<string, number>
  gauges: Record<string, number>
  acknowledged: Record<string, number>
  input_queue_batches: number
  failure: string | null
}

export interface Health {
  status: 'ok' | 'degraded' | 'failing'
  reason?: string | null
}

/** One entry of `GET /api/v1/components`. */
export interface Component {
  id: string
  kind: Kind
  type: string
  counters: Counters
  rates: { received_events_per_sec: number; sent_events_per_sec: number; utilization: number }
  health: Health
}

export interface Components {
  uptime_seconds: number
  components: Component[]
}

/** One archive `POST /api/v1/query` can read (`GET /api/v1/archives`). */
export interface Archive {
  id: string
  url: string
  table: string
}

export interface Column {
  name: string
  type: string
}

export type Cell = string | number | boolean | null

/** The answer of `POST /api/v1/query`. */
export interface QueryResult {
  columns: Column[]
  rows: Cell[][]
  truncated: boolean
  elapsed_ms: number
}
