/**
 * What the PandA control port (TCP 8888) says and what a client sends it, as types. The protocol as implemented is
 * in ../../../docs/panda-control-port.md (from PandABlocks-server docs/commands.rst and server/config_server.c).
 */

/** Where a reply sat in the stream: absolute byte offset of its first byte, and its length including newlines. */
interface ReplyPlace {
  readonly offset: number
  readonly bytes: number
}

/** `OK`: an assignment or table write succeeded. */
export interface OkReply extends ReplyPlace {
  readonly kind: 'ok'
}

/** `OK =value`: a query's single value (may be empty). */
export interface ValueReply extends ReplyPlace {
  readonly kind: 'value'
  readonly value: string
}

/** `ERR message`: the command failed and changed nothing. */
export interface ErrorReply extends ReplyPlace {
  readonly kind: 'error'
  readonly message: string
}

/** Zero or more `!item` lines then `.`: a query's list of values (the `!` removed). */
export interface MultiReply extends ReplyPlace {
  readonly kind: 'multi'
  readonly lines: readonly string[]
}

/** One complete reply. Every command gets exactly one, in the order the commands were sent. */
export type ControlReply = OkReply | ValueReply | ErrorReply | MultiReply

/** A reply other than `ERR`. */
export type SuccessReply = OkReply | ValueReply | MultiReply

/**
 * The reply a command is sent for: `ok` (assignments, table writes), `value` (`OK =...`), `multi` (`!`...`.`), or
 * `value-or-multi` for a query whose form the client does not know (a field may be a table). `ERR` is always possible.
 */
export type ReplyExpect = 'ok' | 'value' | 'multi' | 'value-or-multi'

/**
 * A command ready to send: its lines and how to read its reply. Built by the functions of commands.ts; sent with
 * PandaControlConnection.send(), which checks the reply against `expect` before calling `decode`.
 */
export interface ControlCommand<T> {
  /** Lines to send, without newlines: the command, then for a table write its data lines and one empty line. */
  readonly lines: readonly string[]
  /** The command as error messages quote it: the first line, plus the word count of a table write. */
  readonly label: string
  readonly expect: ReplyExpect
  /** Turns a reply of the expected kind into the result. Throws a PANDA_PROTOCOL FlyScanError if the text is wrong. */
  readonly decode: (reply: SuccessReply) => T
}

/** The groups `*CHANGES.<group>?` can ask about; `undefined` means every group (`*CHANGES?`). */
export type ChangeGroup = 'CONFIG' | 'BITS' | 'POSN' | 'READ' | 'ATTR' | 'TABLE' | 'METADATA'

/** A `*CHANGES?` reply, split by line form. */
export interface ControlChanges {
  /** `!NAME=value` lines: a field (`PCAP.TRIG`), an attribute (`INENC1.VAL.CAPTURE`) or `*METADATA.KEY`. */
  readonly changed: Map<string, string>
  /** `!NAME<` lines: a table (`SEQ1.TABLE`) or multi-line metadata changed; the new content is not in the reply. */
  readonly multiline: string[]
  /** `!NAME (error)` lines: the server could not read the value. */
  readonly errors: string[]
}

/** A `*PCAP.STATUS?` reply, e.g. `Busy 1 1`. */
export interface PcapStatus {
  /** `Busy` while a capture is armed or running. */
  readonly state: 'Busy' | 'Idle'
  /** Data-port clients connected. */
  readonly readers: number
  /** Data-port clients taking data from the current capture. */
  readonly takingData: number
}

/** A `*IDN?` reply, e.g. `PandA SW: 4.1 FPGA: 4.1.0 816147d6 00000000 rootfs: PandA 4.1`. */
export interface PandaIdentification {
  /** The server's name, `PandA`. */
  readonly name: string
  /** Software version, e.g. `4.1`. */
  readonly software: string
  /** FPGA version, build and firmware words, e.g. `4.1.0 816147d6 00000000`. */
  readonly fpga: string
  /** The system the server runs on (servers from 1.1 on), e.g. `PandA 4.1`. */
  readonly rootfs: string | undefined
  /** The whole reply value. */
  readonly text: string
}

/** One `!NAME index type [subtype]` line of a `BLOCK.*?` reply. */
export interface BlockFieldListing {
  /** e.g. `TERM`. */
  readonly name: string
  /** The field's place in the block's description (fields come in no particular order). */
  readonly index: number
  /** e.g. `param`, `bit_out`, `pos_mux`, `table`. */
  readonly type: string
  /** The rest of the line, e.g. `enum` for `param enum`; undefined when there is none. */
  readonly subtype: string | undefined
}

/**
 * How a table write sends its words. `fixed` (`<`) replaces the table; `append` (`<<`) adds a streaming chunk;
 * `append-last` (`<<|`) adds the last streaming chunk.
 */
export type TableWriteMode = 'fixed' | 'append' | 'append-last'

export interface TableWriteOptions {
  readonly mode?: TableWriteMode
  /** `decimal` (data lines of decimal words) or `base64` (the `B` format: base64 of the little-endian words). */
  readonly encoding?: 'decimal' | 'base64'
  /** Words per decimal data line (default 4: one SEQ row per line). */
  readonly wordsPerLine?: number
}
