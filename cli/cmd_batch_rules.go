package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/rules"
)

// previewRules applies the rules to d, writing nothing, and returns for
// each rule its counts and the changes it makes, as compact JSON
// (RuleResult.Preview). Rules apply in order, as critq transform applies
// them: a rule sees what the rules before it of the same kind made of an
// entry, and its changes are told from theirs (one pass:
// RuleResult.Steps).
func (p *scriptProgram) previewRules(ctx context.Context, d *dump.Dump) ([]json.RawMessage, error) {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.timeout, fmt.Errorf("timeout after %v", p.timeout))
		defer cancel()
	}
	// A rule's error names the dump, the rule and the image; a bad image,
	// the dump and the image.
	res, err := rules.ApplyRulesWith(ctx, d, p.rules, rules.ApplyOptions{Steps: true})
	if err != nil {
		return nil, withExitCode(err, exitError)
	}
	out := make([]json.RawMessage, len(p.rules))
	for i := range p.rules {
		out[i] = res.Preview(i)
	}
	return out, nil
}
