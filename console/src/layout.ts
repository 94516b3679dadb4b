// The topology graph laid out left to right: sources in the first column, every other
// component one column right of its furthest input, and within a column an order
// that follows the inputs' (barycentres), so edges cross little.

export interface GraphNode {
  id: string
  inputs: string[]
}

export interface Edge {
  /** The component the edge leaves. */
  from: string
  /** The named output it leaves from, or null for the default one. */
  output: string | null
  to: string
}

export interface Placed {
  id: string
  column: number
  row: number
}

export interface Layout {
  nodes: Map<string, Placed>
  edges: Edge[]
  columns: number
  rows: number
}

/** Splits an input (`id` or `id.output`) into component and output; ids may hold dots. */
export function parseInput(input: string, ids: Set<string>): { from: string; output: string | null } | null {
  if (ids.has(input)) return { from: input, output: null }
  for (let dot = input.lastIndexOf('.'); dot > 0; dot = input.lastIndexOf('.', dot - 1)) {
    const from = input.slice(0, dot)
    if (ids.has(from)) return { from, output: input.slice(dot + 1) }
  }
  return null
}

export function layout(nodes: GraphNode[]): Layout {
  const ids = new Set(nodes.map((n) => n.id))
  const edges: Edge[] = []
  const inputsOf = new Map<string, string[]>()
  for (const n of nodes) {
    const from: string[] = []
    for (const i of n.inputs) {
      const p = parseInput(i, ids)
      if (!p) continue
      edges.push({ from: p.from, output: p.output, to: n.id })
      from.push(p.from)
    }
    inputsOf.set(n.id, from)
  }
  // Longest path from a source; a cycle (never valid in a topology) stops at depth n.
  const column = new Map<string, number>()
  const depth = (id: string, seen: number): number => {
    const known = column.get(id)
    if (known !== undefined) return known
    if (seen > nodes.length) return 0
    const ins = inputsOf.get(id) ?? []
    const c = ins.length === 0 ? 0 : 1 + Math.max(...ins.map((i) => depth(i, seen + 1)))
    column.set(id, c)
    return c
  }
  for (const n of nodes) depth(n.id, 0)
  const columns = Math.max(0, ...column.values()) + 1
  const byColumn: string[][] = Array.from({ length: columns }, () => [])
  for (const n of nodes) byColumn[column.get(n.id) ?? 0].push(n.id)
  const row = new Map<string, number>()
  byColumn[0].forEach((id, i) => row.set(id, i))
  for (let c = 1; c < columns; c++) {
    const centre = (id: string) => {
      const rs = (inputsOf.get(id) ?? []).map((i) => row.get(i)).filter((r): r is number => r !== undefined)
      return rs.length ? rs.reduce((a, b) => a + b, 0) / rs.length : 0
    }
    // Stable: ties keep the topology's order.
    const order = byColumn[c].map((id, i) => ({ id, i, c: centre(id) })).sort((a, b) => a.c - b.c || a.i - b.i)
    order.forEach((o, i) => row.set(o.id, i))
  }
  const placed = new Map<string, Placed>()
  for (const n of nodes) placed.set(n.id, { id: n.id, column: column.get(n.id) ?? 0, row: row.get(n.id) ?? 0 })
  return { nodes: placed, edges, columns, rows: Math.max(1, ...byColumn.map((c) => c.length)) }
}
