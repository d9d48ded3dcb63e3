package rules

import (
	"github.com/critq/critq/dump"
	"github.com/critq/critq/transform"
)

// Plan returns what the rules' result makes of d, the dump they were
// applied to, for transform.WriteDir and transform.ApplyInPlace: each
// changed image rewritten, its changed entries re-encoded and every other
// entry copied as bytes.
func (r *RuleResult) Plan(d *dump.Dump) (*transform.Plan, error) {
	plan := &transform.Plan{Images: map[string][]byte{}}
	byFile := map[string]map[int]*transform.Change{}
	for _, ch := range r.Changes {
		m := byFile[ch.File]
		if m == nil {
			m = map[int]*transform.Change{}
			byFile[ch.File] = m
		}
		m[ch.Index] = &transform.Change{Drop: ch.Drop, Payload: ch.Payload, Extra: ch.Extra}
	}
	for name, changes := range byFile {
		img, err := d.File(name).Image()
		if err != nil {
			return nil, err
		}
		b, err := transform.RewriteImage(name, img, changes)
		if err != nil {
			return nil, err
		}
		plan.Images[name] = b
	}
	return plan, nil
}
