// Drives pipe's web console in Debian's Chromium with playwright-core; run by
// tests/console.rs with NODE_PATH at the installed console/package-lock.json.
//   node browser.js pipeline URL SHOT_DIR ID…   topology, edge rates, tap, pause, 1,000-row cap
//   node browser.js token URL SHOT_DIR TOKEN ID…  the login prompt shows no data
//   node browser.js sql URL SHOT_DIR SQL ROWS_JSON  the SQL view's table equals ROWS_JSON, and a chart
//   node browser.js kafka URL SHOT_DIR LAGS_JSON    the Kafka view's lag per partition equals LAGS_JSON
// Prints each screenshot's path; exits non-zero with the reason on failure.
'use strict'
const { chromium } = require('playwright-core')
const fs = require('fs')
const os = require('os')
const path = require('path')

const [scenario, url, shots, ...rest] = process.argv.slice(2)

function check(cond, message) {
  if (!cond) throw new Error(message)
}

async function waitFor(what, secs, fn) {
  const until = Date.now() + secs * 1000
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out after ${secs} s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function shot(page, name) {
  const file = path.join(shots, name)
  await page.screenshot({ path: file, fullPage: true })
  console.log(`screenshot: ${file}`)
}

async function pipeline(page, ids) {
  await page.goto(url)
  for (const id of ids) await page.waitForSelector(`g[data-node="${id}"]`, { timeout: 15000 })
  const edge = `text[data-edge="${ids[0]}->${ids[1]}"]`
  const rate = async () => Number(await page.getAttribute(edge, 'data-rate'))
  const first = await rate()
  // The generator sends 4,000 events/s: the label goes from 0 (one reading) to near that.
  const rising = await waitFor('the edge rate to pass 1,000/s', 20, async () => ((await rate()) > 1000 ? rate() : 0))
  console.log(`edge ${ids[0]}->${ids[1]}: ${first} -> ${rising} events/s`)
  for (const id of ids) check((await page.getAttribute(`g[data-node="${id}"]`, 'data-health')) === 'ok', `${id} is not ok`)
  await page.click(`g[data-node="${ids[1]}"]`)
  await page.waitForSelector('aside.panel:not([hidden]) table.counters')
  const panel = await page.textContent('aside.panel')
  check(panel.includes(ids[1]) && panel.includes('received'), `the panel shows no counters: ${panel}`)
  await shot(page, 'topology.png')

  await page.click('nav a[data-view="tap"]')
  await page.selectOption('#tap-output', ids[1])
  await page.waitForSelector('#tap-rows li', { timeout: 10000 })
  const firstRow = await page.textContent('#tap-rows li')
  check(firstRow.includes(ids[1]) && firstRow.includes('service'), `a tapped row: ${firstRow}`)
  const received = async () => Number(await page.getAttribute('#tap-status', 'data-received'))
  await page.click('#tap-pause')
  await new Promise((r) => setTimeout(r, 500))
  const paused = await received()
  await new Promise((r) => setTimeout(r, 2000))
  check((await received()) === paused, `events arrived while paused: ${paused} -> ${await received()}`)
  await page.click('#tap-pause')
  await waitFor('5,000 tapped events', 60, async () => (await received()) >= 5000)
  const rows = await page.locator('#tap-rows li').count()
  console.log(`tap: ${await received()} received, ${rows} rows in the page`)
  check(rows <= 1000 && rows >= 900, `the page holds ${rows} rows`)
  // Paused, so the row clicked is not pushed out by newer ones.
  await page.click('#tap-pause')
  await page.click('#tap-rows li')
  await page.waitForSelector('#tap-rows li pre.json:not([hidden])')
  await shot(page, 'tap.png')
}

async function token(page, secret, ids) {
  await page.goto(url)
  await page.waitForSelector('#login', { timeout: 15000 })
  const text = await page.textContent('body')
  for (const id of ids) check(!text.includes(id), `the prompt page shows component ${id}`)
  check((await page.locator('g[data-node]').count()) === 0, 'the graph is drawn without a token')
  await shot(page, 'login.png')
  await page.fill('#login-token', 'wrong')
  await page.click('#login button[type=submit]')
  // The old form stays until the API has answered, so wait for the new message.
  await page
    .waitForFunction(() => document.querySelector('#login')?.textContent.includes('refused'), null, { timeout: 15000 })
    .catch(() => {})
  check((await page.textContent('#login')).includes('refused'), 'a wrong token is not reported')
  await page.fill('#login-token', secret)
  await page.click('#login button[type=submit]')
  for (const id of ids) await page.waitForSelector(`g[data-node="${id}"]`, { timeout: 15000 })
}

async function sql(page, statement, expected) {
  await page.goto(url)
  await page.waitForSelector('nav a[data-view="sql"]', { timeout: 15000 })
  await page.click('nav a[data-view="sql"]')
  await page.fill('#sql-text', statement)
  await page.click('#sql-run')
  await page.waitForSelector('#sql-result table tbody tr', { timeout: 30000 })
  const rows = await page.$$eval('#sql-result table tbody tr', (trs) =>
    trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)),
  )
  const want = JSON.parse(expected).map((r) => r.map(String))
  console.log(`sql view: ${JSON.stringify(rows)}`)
  check(JSON.stringify(rows) === JSON.stringify(want), `the SQL view shows ${JSON.stringify(rows)}, pipe query ${JSON.stringify(want)}`)
  check(!(await page.$eval('#sql-chart', (c) => c.hidden)), 'no chart for a category and a number')
  // Pixels that differ from the canvas's corner (its background) are the drawing.
  const drawn = await page.$eval('#sql-chart', (c) => {
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height)
    let n = 0
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2] || data[i + 3] !== data[3]) n++
    }
    return n
  })
  console.log(`chart: ${drawn} drawn pixels`)
  check(drawn > 100, `the chart canvas is blank (${drawn} drawn pixels)`)
  await shot(page, 'sql.png')
}

async function kafka(page, expected) {
  const want = JSON.parse(expected)
  await page.goto(url)
  await page.waitForSelector('nav a[data-view="kafka"]', { timeout: 15000 })
  await page.click('nav a[data-view="kafka"]')
  const lags = async () =>
    Object.fromEntries(
      await page.$$eval('tr[data-topic][data-partition]', (trs) =>
        trs.map((tr) => [`${tr.dataset.topic}/${tr.dataset.partition}`, tr.dataset.lag]),
      ),
    )
  const shown = await waitFor('every partition with its lag', 20, async () => {
    const l = await lags()
    return Object.keys(want).every((k) => l[k] !== undefined && l[k] !== '') ? l : null
  })
  console.log(`kafka view: ${JSON.stringify(shown)}`)
  for (const [k, v] of Object.entries(want)) check(Number(shown[k]) === v, `lag of ${k}: the view shows ${shown[k]}, /metrics ${v}`)
  await shot(page, 'kafka.png')
}

;(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pipe-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.PIPE_TEST_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  const page = context.pages()[0] || (await context.newPage())
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  try {
    if (scenario === 'pipeline') await pipeline(page, rest)
    else if (scenario === 'token') await token(page, rest[0], rest.slice(1))
    else if (scenario === 'sql') await sql(page, rest[0], rest[1])
    else if (scenario === 'kafka') await kafka(page, rest[0])
    else throw new Error(`unknown scenario ${scenario}`)
    check(errors.length === 0, `script errors in the page: ${errors.join('; ')}`)
  } catch (e) {
    await shot(page, 'failure.png').catch(() => {})
    throw e
  } finally {
    await context.close()
    fs.rmSync(profile, { recursive: true, force: true })
  }
})().catch((e) => {
  console.error(`console test failed: ${e.message}`)
  process.exit(1)
})
