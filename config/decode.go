package config

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/learnsync/learnsync/connectors"
)

// decoder turns YAML nodes into Go values strictly: unknown keys, wrong types,
// unset environment variables and unreadable secret files are all collected
// as FieldErrors with the path of the field, so that a user sees every
// mistake at once.
type decoder struct {
	getenv  func(string) string
	lookup  func(string) (string, bool)
	baseDir string
	errs    []error
}

var (
	secretType   = reflect.TypeFor[connectors.Secret]()
	nodeType     = reflect.TypeFor[yaml.Node]()
	durationType = reflect.TypeFor[time.Duration]()
	scheduleType = reflect.TypeFor[Schedule]()
	envRef       = regexp.MustCompile(`\$\{([^}]*)\}`)
)

func (d *decoder) fail(path, format string, args ...any) {
	d.errs = append(d.errs, connectors.Errorf(path, format, args...))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// expand replaces ${VAR} with the environment variable's value.
func (d *decoder) expand(path, s string) (string, bool) {
	if !strings.Contains(s, "${") {
		return s, true
	}
	ok := true
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if !validEnvName(name) {
			d.fail(path, "%q is not a valid environment variable reference", m)
			ok = false
			return ""
		}
		v, set := d.lookup(name)
		if !set {
			d.fail(path, "environment variable %s is not set", name)
			ok = false
		}
		return v
	})
	return out, ok
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// yamlFields maps the yaml names of a struct's fields to their indexes.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	m := make(map[string]int)
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
		names = append(names, name)
	}
	return m, names
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "a value"
	}
	return "something else"
}

// decode fills v (addressable) from n. Fields not in n keep their value, which
// is how defaults work: fill v with defaults, then decode.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n == nil {
		return
	}
	for n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	t := v.Type()
	if t == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// "key:" with nothing after it keeps the default.
		return
	}
	switch {
	case t == scheduleType:
		// A spec, parsed with the other checks (Config.validate).
		spec := v.Interface().(Schedule).String()
		d.decodeScalar(n, reflect.ValueOf(&spec).Elem(), path)
		v.Set(reflect.ValueOf(unparsedSchedule(spec)))
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(path, "must be a mapping, got %s", kindName(n))
			return
		}
		d.decodeStruct(n, v, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			// A single value where a list is expected is a common slip.
			d.fail(path, "must be a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// decodeMap fills a map with string keys (sources[].map) from a mapping.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, "must be a mapping, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, p := n.Content[i].Value, join(path, n.Content[i].Value)
		if m.MapIndex(reflect.ValueOf(key)).IsValid() {
			d.fail(p, "given twice")
			continue
		}
		val := reflect.New(v.Type().Elem()).Elem()
		d.decode(n.Content[i+1], val, p)
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), val)
	}
	v.Set(m)
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	fields, _ := yamlFields(v.Type())
	present := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		present[n.Content[i].Value] = false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		p := join(path, key)
		if present[key] {
			d.fail(p, "given twice")
			continue
		}
		present[key] = true
		if idx, ok := fields[key]; ok {
			d.decode(val, v.Field(idx), p)
			continue
		}
		// Any secret may be given as <key>_file: a path holding the secret.
		if base, ok := strings.CutSuffix(key, "_file"); ok {
			if idx, ok := fields[base]; ok && v.Field(idx).Type() == secretType {
				if _, both := present[base]; both {
					d.fail(p, "give either %s or %s, not both", base, key)
					continue
				}
				d.decodeSecretFile(val, v.Field(idx), p)
				continue
			}
		}
		d.fail(p, "unknown key")
	}
}

func (d *decoder) decodeSecretFile(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "must be a file path, got %s", kindName(n))
		return
	}
	p, ok := d.expand(path, n.Value)
	if !ok {
		return
	}
	if p == "" {
		d.fail(path, "must not be empty")
		return
	}
	b, err := os.ReadFile(connectors.ResolvePath(d.baseDir, p))
	if err != nil {
		if os.IsNotExist(err) {
			d.fail(path, "file not found: %s", p)
		} else {
			d.fail(path, "cannot read %s: %v", p, unwrapPathError(err))
		}
		return
	}
	v.SetString(strings.TrimRight(string(b), "\r\n"))
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "must be a single value, got %s", kindName(n))
		return
	}
	isSecret := v.Type() == secretType
	val, ok := d.expand(path, n.Value)
	if !ok {
		return
	}
	show := func() string {
		if isSecret {
			return "the secret"
		}
		if strings.Contains(n.Value, "${") {
			// The environment may hold secrets: name the reference only.
			return fmt.Sprintf("the value of %q", n.Value)
		}
		if len(val) > 40 {
			return fmt.Sprintf("%q...", val[:40])
		}
		return fmt.Sprintf("%q", val)
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(val)
	case reflect.Bool:
		switch strings.ToLower(val) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			d.fail(path, "must be true or false, got %s", show())
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if v.Type() == durationType {
			dur, err := time.ParseDuration(val)
			if err != nil {
				if val == "0" {
					v.SetInt(0)
					return
				}
				d.fail(path, "must be a duration like 30s, 5m or 72h, got %s", show())
				return
			}
			v.SetInt(int64(dur))
			return
		}
		var i int64
		if _, err := fmt.Sscan(val, &i); err != nil || fmt.Sprint(i) != strings.TrimPrefix(val, "+") {
			d.fail(path, "must be a whole number, got %s", show())
			return
		}
		v.SetInt(i)
	case reflect.Float64, reflect.Float32:
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(path, "must be a number, got %s", show())
			return
		}
		v.SetFloat(f)
	default:
		d.fail(path, "cannot be set from configuration (unsupported type %s)", v.Type())
	}
}
