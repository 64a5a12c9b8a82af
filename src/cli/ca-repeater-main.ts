#!/usr/bin/env node
/**
 * The program libexec/caRepeater runs when libca starts a CA repeater: `tst-fly ca-repeater`, without loading the
 * rest of the command (a repeater may run for hours; this keeps it small).
 */
import { caRepeaterCommand } from './ca-repeater.js'

const stopped = new Promise<void>((resolve) => {
  process.once('SIGINT', () => { resolve() })
  process.once('SIGTERM', () => { resolve() })
  process.once('SIGHUP', () => { resolve() })
})

try {
  process.exitCode = await caRepeaterCommand(process.argv.slice(2), { stderr: (text) => process.stderr.write(text), stopped })
} catch (err) {
  process.stderr.write(`tst-fly ca-repeater: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
}
