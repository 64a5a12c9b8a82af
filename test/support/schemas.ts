/**
 * Validation of event-model documents against the official JSON schemas, copied unchanged into
 * src/documents/schemas/ (read from there at run time; see its README.md).
 *
 * The schemas declare no $schema, but they are JSON Schema 2020-12 in substance (`$defs`, `prefixItems`,
 * `unevaluatedProperties`, `$ref` beside other keywords), and event-model validates them with the latest draft. A
 * draft-07 validator would silently ignore `unevaluatedProperties` (so an event with unknown fields would pass) and
 * the siblings of `$ref`, so they are compiled with ajv's 2020-12 class, plus ajv-formats. Each schema is
 * self-contained (every $ref is local, `#/$defs/...`).
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Ajv2020Module from 'ajv/dist/2020.js'
import type { ErrorObject, ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import { SCHEMA_FILES } from '../../src/documents/index.js'
import type { DocumentName } from '../../src/documents/index.js'

// ajv and ajv-formats are CommonJS: under NodeNext the class is the default export's `default`.
const Ajv2020 = Ajv2020Module.default
const addFormats = addFormatsModule.default

/** src/documents/schemas, from this file compiled to build/test/support/schemas.js (or run from test/support/). */
export function schemaDir (): string {
  const here = dirname(fileURLToPath(import.meta.url))
  const root = here.includes(`${join('build', 'test')}`) ? join(here, '..', '..', '..') : join(here, '..', '..')
  return join(root, 'src', 'documents', 'schemas')
}

let validators: Map<DocumentName, ValidateFunction> | undefined

function compile (): Map<DocumentName, ValidateFunction> {
  const ajv = new Ajv2020({ allErrors: true, strict: false })
  addFormats(ajv)
  const out = new Map<DocumentName, ValidateFunction>()
  for (const [name, file] of Object.entries(SCHEMA_FILES) as Array<[DocumentName, string]>) {
    const schema = JSON.parse(readFileSync(join(schemaDir(), file), 'utf8')) as object
    out.set(name, ajv.compile(schema))
  }
  return out
}

/** The compiled validator of one document kind. */
export function validatorFor (name: DocumentName): ValidateFunction {
  validators ??= compile()
  const v = validators.get(name)
  if (v === undefined) throw new Error(`no schema for document name ${JSON.stringify(name)}`)
  return v
}

function describe (errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? []).map(e => `${e.instancePath === '' ? '/' : e.instancePath} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`).join('; ')
}

/** The error raised for an invalid document; `errors` are ajv's. */
export class DocumentValidationError extends Error {
  override readonly name = 'DocumentValidationError'
  constructor (readonly documentName: DocumentName, readonly errors: readonly ErrorObject[]) {
    super(`${documentName} document is not valid against ${SCHEMA_FILES[documentName]}: ${describe(errors)}`)
  }
}

/** Throw DocumentValidationError (with ajv's errors) unless `doc` is a valid document of kind `name`. */
export function validateDocument (name: DocumentName, doc: unknown): void {
  const validate = validatorFor(name)
  // Validate the JSON form, which is what leaves the process (undefined fields vanish, typed arrays become arrays).
  const json: unknown = JSON.parse(JSON.stringify(doc, (_k, v: unknown) => ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as unknown as ArrayLike<number>) : v))
  if (!validate(json)) throw new DocumentValidationError(name, validate.errors ?? [])
}

/** The ajv error text for `doc`, or undefined when it is valid: for tests that expect a document to be invalid. */
export function documentErrors (name: DocumentName, doc: unknown): string | undefined {
  try {
    validateDocument(name, doc)
    return undefined
  } catch (err) {
    if (err instanceof DocumentValidationError) return err.message
    throw err
  }
}
