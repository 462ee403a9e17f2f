package entra

import (
	"encoding/json"
	"slices"
	"strings"

	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

// userSelect returns the properties the users delta selects: those the
// connector maps and the configured extra_attributes.
func (c *Connector) userSelect() []string {
	out := slices.Clone(userSelect)
	for _, a := range c.cfg.ExtraAttributes {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// extraFingerprint is the part of the settings fingerprint the extra
// attributes make: a cursor made under another $select is not continued
// (its mirror lacks the properties). Empty without extra attributes, so
// that cursors made before the setting existed stay valid.
func extraFingerprint(extra []string) string {
	if len(extra) == 0 {
		return ""
	}
	return "\x00extra=" + strings.Join(extra, ",")
}

// rawUser is the Graph user object for the rules: the SDK's model written
// back as Graph sent it (typed properties such as
// onPremisesExtensionAttributes and employeeOrgData, and in
// AdditionalData the extension_<appid>_<name> ones).
func rawUser(u models.Userable) map[string]any {
	w := jsonserialization.NewJsonSerializationWriter()
	defer w.Close()
	if err := w.WriteObjectValue("", u); err != nil {
		return map[string]any{}
	}
	b, err := w.GetSerializedContent()
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || m == nil {
		return map[string]any{}
	}
	delete(m, "@odata.type")
	return m
}
