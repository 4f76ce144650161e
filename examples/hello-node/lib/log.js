'use strict';
// Logging the way the kernel reads it: one JSON object per line on stderr,
// in hclog's JSON format. The kernel's go-plugin client re-logs each line
// under its own logger (named edulure.plugin.<name>.<binary>) at the line's
// @level, with @message as the message and every other key as a field.
//
// @level, @message and @timestamp must be strings, and @timestamp must have
// exactly six fractional digits ("2006-01-02T15:04:05.000000Z07:00"): a
// line whose timestamp does not parse is re-logged verbatim at debug level.
// A line that is not JSON is re-logged at debug level too (or at the level
// of a leading "[INFO]", "[WARN]", ... tag).

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

// timestamp is now with microseconds, as hclog writes it.
function timestamp() {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function write(level, message, fields) {
  const line = { '@level': level, '@message': String(message), '@timestamp': timestamp() };
  for (const [k, v] of Object.entries(fields || {})) {
    if (!k.startsWith('@')) line[k] = v instanceof Error ? v.message : v;
  }
  process.stderr.write(JSON.stringify(line) + '\n');
}

const log = Object.fromEntries(LEVELS.map((l) => [l, (message, fields) => write(l, message, fields)]));

module.exports = { log };
