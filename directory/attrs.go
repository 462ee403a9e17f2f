package directory

import "github.com/learnsync/learnsync/connectors"

// KeepAttrs sets, by source name, the raw attributes of pushed users that
// the rules read: a SCIM push keeps them in the mirror row (attrs), as a
// connector does for a fetch. The service sets it with every configuration
// it loads; nil keeps none.
func (s *Store) KeepAttrs(bySource map[string]*connectors.Selection) {
	s.attrs.Store(&bySource)
}

func (s *Store) keepAttrs(source string) *connectors.Selection {
	if m := s.attrs.Load(); m != nil {
		return (*m)[source]
	}
	return nil
}
