package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"

	"cel.dev/cel-go/common/types"
)

// containerFiles are the members of a checkpoint archive's root that the
// container variable holds, by key.
var containerFiles = []struct{ key, name string }{
	{"config", "config.dump"},
	{"spec", "spec.dump"},
}

// container returns the value of the container variable: for a dump read
// from a checkpoint archive a map {"config": ..., "spec": ...} of its
// config.dump and spec.dump decoded as JSON (null for a file the archive
// lacks), and null for a dump folder. JSON numbers that are integers
// become int (uint above the int range), others double.
func (d *Dump) container() (any, error) {
	return d.once("container", func() (any, error) {
		a := d.d.Archive()
		if a == nil {
			return types.NullValue, nil
		}
		out := map[string]any{}
		for _, f := range containerFiles {
			b, err := a.ReadFile(f.name)
			if errors.Is(err, fs.ErrNotExist) {
				out[f.key] = nil
				continue
			}
			if err != nil {
				return nil, err
			}
			v, err := decodeJSON(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", d.Name(), f.name, err)
			}
			out[f.key] = v
		}
		return out, nil
	})
}

// decodeJSON decodes one JSON document into maps, lists, strings, bools,
// nil and numbers as int64, uint64 or float64.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON document")
	}
	return jsonNumbers(v), nil
}

// jsonNumbers replaces the json.Numbers in v, in place.
func jsonNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonNumbers(e)
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := strconv.ParseFloat(string(x), 64) // valid JSON: ±Inf at worst
		return f
	}
	return v
}
