// Package critjson writes and reads CRIU images in the JSON form of crit,
// CRIU's Python image tool: the plain form of "crit decode" and the pretty
// form of "crit decode --pretty" and "crit show" (format.md section 7).
//
// Encode renders a whole image read by a [codec.Reader]; AppendMessage and
// AppendPayload render single messages for other packages' output. Decode
// parses a document in either form back into entries, which
// [Image.WriteTo] writes as an image with [codec.Writer]; for every image
// CRIU writes, decoding its JSON gives the original bytes back.
//
// The encoder walks the wire data of each payload directly, with a plan per
// message type computed once, and appends to a byte slice; payloads that a
// marshaller would not have written (fields out of order, packed repeated
// fields, over-long varints) are first brought into canonical form.
//
// Where crit is wrong critq follows the image format, and says so:
//
//   - task_state (dict "gen") is printed with compel's names ALIVE, DEAD,
//     STOPPED and ZOMBIE at compel's values; crit 4.2 prints 3 as "Zombie"
//     and 6 as "Stopped" (bug B7). Both spellings parse: crit's names at
//     the values crit printed them for, critq's at compel's, so JSON from
//     either tool encodes to the bytes it came from.
//   - IPCNS_SHM entries with in_pagemaps have no "extra" (crit reads the
//     following bytes as segment data, bug B8); an empty "extra" on such an
//     entry, as crit writes it, is accepted and ignored.
//   - Enum numbers without a name are printed as numbers and parsed back
//     (crit fails, bug B9); ipadd fields of 2 or 3 words are printed as
//     numbers (bug B14).
//   - Strings that are not UTF-8 are written with the lone surrogates
//     \udc80..\udcff for their stray bytes, which parse back to the bytes.
//   - unix_name bytes quote CR and LF as =0D and =0A, so names holding them
//     round-trip (crit's text mode rewrites line ends).
//
// The parser is stricter than crit's: unknown keys, wrong types, values out
// of range, and extras that do not match their entry are errors that name
// the JSON path (entries[3].vmas[0].prot) or the line and column.
package critjson
