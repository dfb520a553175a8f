/*
 * Every ```js / ```ts code block in README.md and docs/*.md must type-check.
 *
 * Each block becomes a virtual module of its own (`.mjs` for JavaScript, checked with
 * checkJs; `.mts` for TypeScript), all of them in ONE TypeScript program with the
 * repository's compiler options (tsconfig.json: strict, noUncheckedIndexedAccess, …).
 * `undici-access-token`, `undici-access-token/redis` and `undici-access-token/otel` resolve
 * to lib/index.ts, lib/stores/redis.ts and lib/otel/index.ts through tsconfig.json's `paths`; `undici`, `redis`, `ioredis`
 * and the rest come from node_modules. The placeholders that snippets use without
 * defining (tokenUrl, fetchToken, logger, …) are declared once, in `placeholders`.
 *
 * A block is skipped only when the line right before its fence (blank lines aside) is
 * `<!-- docs-examples: skip (why) -->`. Other fences (sh, json, …) are not checked.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { beforeAll, describe, expect, it } from 'vitest'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/**
 * Names that snippets use as given: a value the reader supplies. One place, one
 * type each; a snippet that defines the name itself shadows it (each block is a module).
 */
const placeholders = `
/** The token endpoint and the client's credentials, e.g. from process.env. */
declare const tokenUrl: string
declare const clientId: string
declare const clientSecret: string
/** Any token source: clientCredentials({ ... }) or your own function. */
declare const fetchToken: import('undici-access-token').FetchToken
/** What accessToken({ origins }) takes. */
declare const origins: import('undici-access-token').Origins
/** One token source per tenant. */
declare const tenantCredentials: Record<string, import('undici-access-token').FetchToken>
/** An Entra ID tenant. */
declare const tenantId: string
/** The token of the user a request is made on behalf of. */
declare function incomingUserToken(signal: AbortSignal): Promise<string>
/** A secret store's HTTP endpoint. */
declare const vaultUrl: string
/** A dispatcher composed with accessToken(). */
declare const api: import('undici').Dispatcher
/** A token an API rejected. */
declare const rejected: import('undici-access-token').Token
/** A pino-style logger. */
declare const logger: {
  debug(fields: object, message: string): void
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}
`

/**
 * @opentelemetry/api is not a dependency of this package. When it is not installed,
 * the part of it the docs use is declared here, with its real signatures.
 */
const openTelemetryFallback = `
declare module '@opentelemetry/api' {
  type AttributeValue = string | number | boolean | Array<string | number | boolean | null | undefined>
  interface Attributes { [key: string]: AttributeValue | undefined }
  interface MetricOptions { description?: string; unit?: string }
  interface Histogram { record(value: number, attributes?: Attributes): void }
  interface Counter { add(value: number, attributes?: Attributes): void }
  interface UpDownCounter { add(value: number, attributes?: Attributes): void }
  interface Meter {
    createHistogram(name: string, options?: MetricOptions): Histogram
    createCounter(name: string, options?: MetricOptions): Counter
    createUpDownCounter(name: string, options?: MetricOptions): UpDownCounter
  }
  export const metrics: { getMeter(name: string, version?: string): Meter }
}
`

const checkedLanguages: Record<string, '.mjs' | '.mts'> = {
  js: '.mjs',
  javascript: '.mjs',
  ts: '.mts',
  typescript: '.mts',
}

const skipMarker = /^<!--\s*docs-examples:\s*skip\s*\((?<reason>[^)]*\S[^)]*)\)\s*-->$/
// Fences may be indented (inside a list item); the block's lines lose that indentation.
const fence = /^(?<indent> *)(?<marks>`{3,}|~{3,})\s*(?<info>[^`]*)$/

interface Block {
  /** Markdown file, relative to the repository. */
  file: string
  /** 1-based line of the opening fence. */
  line: number
  /** Columns of indentation the block's lines lost. */
  indent: number
  language: string
  code: string
  /** The reason given in the skip marker, if any. */
  skip: string | undefined
  /** Path of the virtual module the block is checked as. */
  virtualPath: string
}

interface MarkerProblem {
  file: string
  line: number
  problem: string
}

function markdownFiles(): string[] {
  const docs = path.join(root, 'docs')
  const inDocs = existsSync(docs)
    ? readdirSync(docs)
        .filter((name) => name.endsWith('.md'))
        .sort()
        .map((name) => `docs/${name}`)
    : []
  return ['README.md', ...inDocs]
}

function extractBlocks(file: string): { blocks: Block[]; problems: MarkerProblem[] } {
  const lines = readFileSync(path.join(root, file), 'utf8').split(/\r?\n/)
  const blocks: Block[] = []
  const problems: MarkerProblem[] = []
  /** A skip marker waiting for its fence. */
  let marker: { line: number; reason: string } | undefined
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i] ?? ''
    const open = fence.exec(text)
    if (open?.groups === undefined) {
      // A marker is an HTML comment line of its own; a mention in running text is not one.
      if (/^\s*<!--/.test(text) && text.includes('docs-examples')) {
        const match = skipMarker.exec(text.trim())
        if (match?.groups?.reason === undefined) {
          problems.push({
            file,
            line: i + 1,
            problem: 'malformed marker: write <!-- docs-examples: skip (reason) -->',
          })
        } else {
          marker = { line: i + 1, reason: match.groups.reason.trim() }
          continue
        }
      }
      if (text.trim() !== '' && marker !== undefined) {
        problems.push({ file, line: marker.line, problem: 'skip marker not right before a fence' })
        marker = undefined
      }
      continue
    }
    const { indent = '', marks = '```', info = '' } = open.groups
    const language = info.trim().split(/\s+/)[0]?.toLowerCase() ?? ''
    const close = new RegExp(`^ *${marks[0] === '`' ? '`' : '~'}{${marks.length},}\\s*$`)
    const body: string[] = []
    let end = i + 1
    while (end < lines.length && !close.test(lines[end] ?? '')) {
      const line = lines[end] ?? ''
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart())
      end++
    }
    const extension = checkedLanguages[language]
    if (extension === undefined) {
      if (marker !== undefined) {
        problems.push({
          file,
          line: marker.line,
          problem: `skip marker before a \`\`\`${language} block, which is not checked anyway`,
        })
      }
    } else {
      const name = `${file.replaceAll('/', '__')}-L${i + 1}${extension}`
      blocks.push({
        file,
        line: i + 1,
        indent: indent.length,
        language,
        code: `${body.join('\n')}\n`,
        skip: marker?.reason,
        virtualPath: path.join(root, '.docs-examples', name),
      })
    }
    marker = undefined
    i = end
  }
  if (marker !== undefined) {
    problems.push({ file, line: marker.line, problem: 'skip marker not right before a fence' })
  }
  return { blocks, problems }
}

function compilerOptions(): ts.CompilerOptions {
  const configPath = path.join(root, 'tsconfig.json')
  const config = ts.readConfigFile(configPath, ts.sys.readFile)
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root, undefined, configPath)
  return {
    ...parsed.options,
    noEmit: true,
    allowJs: true,
    checkJs: true,
    // Every block is a module of its own, imports or not, so names never clash.
    moduleDetection: ts.ModuleDetectionKind.Force,
    incremental: false,
  }
}

function hasOpenTelemetry(): boolean {
  try {
    createRequire(path.join(root, 'package.json')).resolve('@opentelemetry/api')
    return true
  } catch {
    return false
  }
}

function check(blocks: Block[]) {
  const options = compilerOptions()
  const preludePath = path.join(root, '.docs-examples', 'placeholders.d.ts')
  const virtual = new Map<string, string>([
    [preludePath, placeholders + (hasOpenTelemetry() ? '' : openTelemetryFallback)],
  ])
  for (const block of blocks) {
    if (block.skip === undefined) virtual.set(block.virtualPath, block.code)
  }

  const host = ts.createCompilerHost(options, true)
  const { getSourceFile, fileExists, readFile } = host
  host.fileExists = (fileName) => virtual.has(path.resolve(fileName)) || fileExists(fileName)
  host.readFile = (fileName) => virtual.get(path.resolve(fileName)) ?? readFile(fileName)
  host.getSourceFile = (fileName, language, ...rest) => {
    const text = virtual.get(path.resolve(fileName))
    return text === undefined
      ? getSourceFile(fileName, language, ...rest)
      : ts.createSourceFile(fileName, text, language, true)
  }
  const entryPoints = {
    'undici-access-token': path.join(root, 'lib', 'index.ts'),
    'undici-access-token/redis': path.join(root, 'lib', 'stores', 'redis.ts'),
    'undici-access-token/otel': path.join(root, 'lib', 'otel', 'index.ts'),
  }
  const program = ts.createProgram(
    [...virtual.keys(), ...Object.values(entryPoints)],
    options,
    host,
  )

  const render = (diagnostic: ts.Diagnostic, block?: Block): string => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ')
    const { file, start } = diagnostic
    if (file === undefined || start === undefined) return `TS${diagnostic.code}: ${message}`
    const { line, character } = file.getLineAndCharacterOfPosition(start)
    const where =
      block === undefined
        ? `${path.relative(root, file.fileName)}:${line + 1}:${character + 1}`
        : `${block.file}:${block.line + 1 + line}:${block.indent + character + 1}`
    return `${where} TS${diagnostic.code}: ${message}`
  }

  const ofBlock = (block: Block): string[] => {
    const sourceFile = program.getSourceFile(block.virtualPath)
    if (sourceFile === undefined) return ['the block was not part of the program']
    return [
      ...program.getSyntacticDiagnostics(sourceFile),
      ...program.getSemanticDiagnostics(sourceFile),
    ].map((diagnostic) => render(diagnostic, block))
  }
  const preludeFile = program.getSourceFile(preludePath)
  const global = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...(preludeFile === undefined
      ? []
      : [
          ...program.getSyntacticDiagnostics(preludeFile),
          ...program.getSemanticDiagnostics(preludeFile),
        ]),
  ].map((diagnostic) => render(diagnostic))
  if (preludeFile === undefined) global.push('the placeholders were not part of the program')

  /** The names each entry point exports, sorted. */
  const exportsOf = (entryPoint: keyof typeof entryPoints): string[] => {
    const checker = program.getTypeChecker()
    const sourceFile = program.getSourceFile(entryPoints[entryPoint])
    const module = sourceFile && checker.getSymbolAtLocation(sourceFile)
    if (module === undefined) return []
    return checker
      .getExportsOfModule(module)
      .map((symbol) => symbol.name)
      .sort()
  }
  return { ofBlock, global, exportsOf }
}

/** The names listed in docs/api.md's "## Exports" table for each entry point, sorted. */
function documentedExports(): Record<string, string[]> {
  const text = readFileSync(path.join(root, 'docs', 'api.md'), 'utf8')
  const section = text.split(/^## Exports$/m)[1]?.split(/^## /m)[0] ?? ''
  const listed: Record<string, string[]> = {}
  let entryPoint: string | undefined
  for (const line of section.split('\n')) {
    const heading = /^`(?<name>undici-access-token[^`]*)`:$/.exec(line.trim())
    if (heading?.groups?.name !== undefined) entryPoint = heading.groups.name
    const row = /^\| `(?<name>\w+)` +\|/.exec(line)
    if (row?.groups?.name !== undefined && entryPoint !== undefined) {
      listed[entryPoint] = [...(listed[entryPoint] ?? []), row.groups.name]
    }
  }
  for (const names of Object.values(listed)) names.sort()
  return listed
}

const extracted = markdownFiles().map(extractBlocks)
const blocks = extracted.flatMap((each) => each.blocks)
const markerProblems = extracted.flatMap((each) => each.problems)

describe('code examples in README.md and docs/*.md', () => {
  // One program for every block, built once.
  let checked: ReturnType<typeof check>
  beforeAll(() => {
    checked = check(blocks)
  })

  it('finds the blocks', () => {
    expect(blocks.filter((block) => block.file === 'README.md').length).toBeGreaterThan(5)
  })

  it('has well-formed skip markers, each right before a checked block', () => {
    expect(markerProblems.map(({ file, line, problem }) => `${file}:${line} ${problem}`)).toEqual(
      [],
    )
  })

  it('checks with the placeholders and the compiler options alone, without errors', () => {
    expect(checked.global).toEqual([])
  })

  it("docs/api.md's export list is exactly what each entry point exports", () => {
    const listed = documentedExports()
    const names = [
      'undici-access-token',
      'undici-access-token/redis',
      'undici-access-token/otel',
    ] as const
    expect(Object.fromEntries(names.map((name) => [name, listed[name]]))).toEqual(
      Object.fromEntries(names.map((name) => [name, checked.exportsOf(name)])),
    )
  })

  const label = (block: Block) => `${block.file}:${block.line} (\`\`\`${block.language})`
  for (const block of blocks) {
    if (block.skip === undefined) {
      it(`${label(block)} type-checks`, () => {
        const diagnostics = checked.ofBlock(block)
        expect(
          diagnostics,
          `${label(block)} does not type-check:\n${diagnostics.join('\n')}`,
        ).toEqual([])
      })
    } else {
      it.skip(`${label(block)}: ${block.skip}`, () => {})
    }
  }
})
