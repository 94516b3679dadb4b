// Builds the console: src/main.ts → dist/app.js and src/style.css → dist/app.css,
// minified, for the binary to embed. With `--tests DIR`, bundles test/*.test.ts into
// DIR as CommonJS for `node --test`. esbuild is found through node's resolution, so
// NODE_PATH may point at an installed node_modules (tests/run.sh does).
//   node build.js [OUTDIR]          (default: dist)
//   node build.js --tests DIR
'use strict'
const esbuild = require('esbuild')
const fs = require('fs')
const path = require('path')

const here = __dirname
const args = process.argv.slice(2)

async function buildApp(outdir) {
  fs.mkdirSync(outdir, { recursive: true })
  await esbuild.build({
    entryPoints: { app: path.join(here, 'src/main.ts') },
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2020',
    legalComments: 'none',
    outdir,
    logLevel: 'warning',
  })
  await esbuild.build({
    entryPoints: { app: path.join(here, 'src/style.css') },
    bundle: true,
    minify: true,
    outdir,
    logLevel: 'warning',
  })
  fs.copyFileSync(path.join(here, 'src/index.html'), path.join(outdir, 'index.html'))
}

async function buildTests(outdir) {
  const dir = path.join(here, 'test')
  const entries = fs.readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => path.join(dir, f))
  fs.rmSync(outdir, { recursive: true, force: true })
  await esbuild.build({
    entryPoints: entries,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    external: ['node:*'],
    outdir,
    logLevel: 'warning',
  })
}

const run = args[0] === '--tests' ? buildTests(path.resolve(args[1] || '.test-build')) : buildApp(path.resolve(args[0] || path.join(here, 'dist')))
run.catch((e) => {
  console.error(e.message || e)
  process.exit(1)
})
