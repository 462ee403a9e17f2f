package main

import (
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/entra"
	"github.com/learnsync/learnsync/connectors/file"
	"github.com/learnsync/learnsync/connectors/okta"
	"github.com/learnsync/learnsync/connectors/onelogin"
	"github.com/learnsync/learnsync/connectors/scim"
)

// registry maps a source's `type` to its connector. It is the one place
// where connectors are wired in.
var registry = connectors.Registry{
	"entra":    entra.Type,
	"file":     file.Type,
	"okta":     okta.Type,
	"onelogin": onelogin.Type,
	"scim":     scim.Type,
}
