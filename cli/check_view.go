package cli

import (
	"context"
	"flag"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/check"
	"github.com/critq/critq/proto/views"
	"github.com/critq/critq/query"
)

// The problems view: critq check's problems of a dump as a CEL variable,
// for queries, batch scripts and the REPL. Package check reads query's
// views, so query cannot build it; cli, which links both, adds it.
func init() {
	err := query.AddView(query.AddedView{
		Name:    "problems",
		Message: "critq.views.problem",
		Doc:     "what critq check finds for a restore on this host (--root, --criu-options): check, pid, image, entry, blocking, message, consequence",
		Build: func(ctx context.Context, d *query.Dump) ([]proto.Message, error) {
			cfg, _ := ctx.Value(checkConfigKey{}).(*checkConfig)
			if cfg == nil {
				cfg = &checkConfig{root: "/"}
			}
			rep, err := check.RunQuery(ctx, d, cfg.host(), cfg.options())
			if err != nil {
				return nil, err
			}
			return problemMessages(rep), nil
		},
	})
	if err != nil {
		panic(err)
	}
}

// problemMessages turns a report's problems into the view's messages.
func problemMessages(rep *check.Report) []proto.Message {
	out := make([]proto.Message, len(rep.Problems))
	for i, p := range rep.Problems {
		out[i] = &views.Problem{Check: proto.String(p.Check), Pid: proto.Uint32(p.PID), Image: proto.String(p.Image),
			Entry: proto.String(p.Entry), Blocking: proto.Bool(p.Blocking), Message: proto.String(p.Message),
			Consequence: proto.String(p.CRIU)}
	}
	return out
}

// checkConfig is the host and options of critq check, from the flags of
// the commands that check (check, query, batch, repl).
type checkConfig struct {
	root    string
	criu    string
	criuSet bool // --criu-options was given (even empty)
	skipRWX bool // --skip-file-rwx-check (critq check)
}

type checkConfigKey struct{}

// checkFlags adds --root and --criu-options to fs.
func checkFlags(fs *flag.FlagSet) *checkConfig {
	cfg := &checkConfig{}
	fs.StringVar(&cfg.root, "root", "/", "the file system a restore will see (critq check; the problems view)")
	fs.Func("criu-options", "the `OPTIONS` a restore will be given (e.g. \"--shell-job --tcp-established\"): a needed one that is missing is a problem", func(s string) error {
		cfg.criu, cfg.criuSet = s, true
		return nil
	})
	return cfg
}

func (cfg *checkConfig) host() check.Host { return check.OSHost{Root: cfg.root} }

func (cfg *checkConfig) options() check.Options {
	opts := check.Options{SkipFileRWXCheck: cfg.skipRWX}
	if cfg.criuSet {
		opts.CRIU = strings.Fields(cfg.criu)
	}
	return opts
}

// context returns ctx carrying cfg to the problems view.
func (cfg *checkConfig) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, checkConfigKey{}, cfg)
}
