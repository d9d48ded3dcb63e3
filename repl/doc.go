// Package repl is the state and the commands of critq's interactive mode,
// apart from any terminal: [Parse] turns a line into a [Cmd], an
// [Evaluator] carries it out with Process and returns the text to print,
// and Complete offers completions from the static types of critq's CEL
// environment. The command critq repl reads lines with a line editor and
// hands them to an Evaluator; tests hand it scripted lines.
//
// As in cel-go's REPL, commands start with a sigil (':' here): :let NAME =
// EXPR binds a name for later expressions, :type EXPR prints a type, :load
// and :dumps switch between dumps, :format and :time change the output, and
// :transform KIND: EXPR previews a rule of critq transform on the current
// dump (the changed fields and the counts), writing nothing.
package repl
